"""Fixtures shared across the test folders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support import make_tiny_recipe


@pytest.fixture
def tiny_recipe() -> Callable[..., dict[str, Any]]:
    """``make_tiny_recipe`` as a fixture."""
    return make_tiny_recipe
