"""``glore demo video``: a small 3D ResNet with and without a GloRe unit on the built-in ``relational_video`` clips.

A clip shows a coloured square in its first frames and another, far away, in its last frames; the class says whether
the two colours are equal. No single frame and no single place holds the answer: the network must relate the start
and the end of the clip across space. The demo trains ``resnet_small_3d`` without and with the unit that
``configs/demo_video.yaml`` places and compares test video accuracy.
"""

from __future__ import annotations

from glore.tools.demo import TASK_QUICK_OVERRIDES, Demo, _glore_variants, register_demo

__all__ = ["VIDEO_DEMO"]

VIDEO_DEMO = register_demo(
    Demo(
        name="video",
        config="demo_video.yaml",
        title="global reasoning across time",
        question="Is the square shown at the end of a clip the colour of the one shown at its start, somewhere else?",
        difference="GloRe units",
        variants=_glore_variants,
        quick=TASK_QUICK_OVERRIDES,
        unit="videos",
    )
)
