"""Tasks: one file a problem, each registering a ``glore.engine.Task`` under the name ``config.task`` selects.

=================  =========================================================================
name               what
=================  =========================================================================
classification     image classification (``glore.tasks.classification.ClassificationTask``)
=================  =========================================================================
"""

from .classification import ClassificationTask

__all__ = ["ClassificationTask"]
