"""``glore demo segmentation``: an FCN with and without the GloRe head on the built-in ``relational_seg`` images.

Every grey object's class is the colour of one small marker placed far from it, so a pixel's neighbourhood cannot
tell the class: the head must carry the marker's colour across the image. The demo trains ``fcn_resnet_small`` with
the plain FCN head and with the GloRe head (``configs/demo_segmentation.yaml``) and compares test mIoU.
"""

from __future__ import annotations

from glore.tools.demo import TASK_QUICK_OVERRIDES, Demo, _head_variants, register_demo

__all__ = ["SEGMENTATION_DEMO"]

SEGMENTATION_DEMO = register_demo(
    Demo(
        name="segmentation",
        config="demo_segmentation.yaml",
        title="a GloRe head on relational segmentation",
        question="Every grey object takes the class of the colour of a small marker placed far away from it, so a "
        "pixel's neighbourhood cannot tell its class.",
        difference="head",
        variants=_head_variants,
        quick=TASK_QUICK_OVERRIDES,
    )
)
