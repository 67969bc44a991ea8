"""Tasks: one file a problem, each registering a ``glore.engine.Task`` under the name ``config.task`` selects.

=================  =========================================================================
name               what
=================  =========================================================================
classification     image classification (``glore.tasks.classification.ClassificationTask``)
segmentation       semantic segmentation (``glore.tasks.segmentation.SegmentationTask``)
video              video action recognition (``glore.tasks.video.VideoTask``)
=================  =========================================================================

The engine finds them through the ``glore.tasks`` entry points of ``pyproject.toml``, without importing this package.
"""

from .classification import ClassificationTask
from .segmentation import SegmentationTask
from .video import VideoTask

__all__ = ["ClassificationTask", "SegmentationTask", "VideoTask"]
