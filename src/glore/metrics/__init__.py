"""Metrics, accumulated over batches and reduced across processes."""

from .classification import ClassificationMeter, mean_class_accuracy, topk_accuracy, topk_correct
from .segmentation import SegmentationMeter

__all__ = ["ClassificationMeter", "SegmentationMeter", "mean_class_accuracy", "topk_accuracy", "topk_correct"]
