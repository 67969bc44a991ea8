"""README.md holds as written: its Python blocks run, and the commands it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from glore.cli import COMMANDS

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_block_runs(index):
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), {"__name__": "readme"})


def test_glore_commands_exist():
    used = set(re.findall(r"^\s*(?:torchrun .*?-m )?glore ([a-z]+)", README.read_text(), flags=re.M))
    assert used and used <= set(COMMANDS), used - set(COMMANDS)


def test_configs_named_exist():
    named = set(re.findall(r"configs/[\w/]+\.yaml", README.read_text()))
    assert named and all((README.parent / path).is_file() for path in named), named
