"""Tests of glore.tasks (a package, so that its test files may share basenames with tests/metrics)."""
