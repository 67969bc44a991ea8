"""Tests of glore.metrics (a package, so that its test files may share basenames with tests/data and tests/tasks)."""
