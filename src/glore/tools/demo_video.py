"""``glore demo video``: a small 3D ResNet with and without GloRe units on the built-in ``relational_video`` clips.

A clip shows a coloured square in its first frames and another, elsewhere, in its last frames; the class says whether
the two colours are equal. Every temporal kernel of the network is 1 (``configs/demo_video.yaml``), as in the C2D
baseline of the Non-local paper: without units each position of each layer sees one frame, the global average pool
sums a start term and an end term, and a linear classifier of such a sum cannot tell "same" from "different"
(``glore.tools.demo_data.RelationalVideoDataset``). The units after res3 and res4 are the network's only path across
frames. The demo trains ``resnet_small_3d`` without and with them, three seeds each, and compares test video accuracy.
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
        why="Why the baseline cannot: every temporal kernel is 1, so without units each feature sees a single frame "
        "and no frame shows both squares. The global average pool then adds a term of the first square to a term "
        "of the last one, and the linear classifier's logit is u(first colour) + v(second colour) for each clip's "
        "placement. With two colours logit(a, a) + logit(b, b) = logit(a, b) + logit(b, a), so the four colour "
        "pairs of a placement cannot all be classified right: at most 3 of 4 clips, however long it trains. A GloRe "
        "unit pools every frame into its nodes, mixes them non-linearly and projects the result back to every "
        "position, so it can compare the two colours.",
    )
)
