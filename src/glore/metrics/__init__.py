"""Metrics, accumulated over batches and reduced across processes."""

from .classification import ClassificationMeter, mean_class_accuracy, topk_accuracy, topk_correct

__all__ = ["ClassificationMeter", "mean_class_accuracy", "topk_accuracy", "topk_correct"]
