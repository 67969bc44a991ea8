"""The stage container: a stage's blocks with GloRe units between them, keeping torchvision's state-dict keys."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from torch import nn

__all__ = ["Stage"]


class Stage(nn.Sequential):
    """A stage: a sequence of blocks with GloRe units between them, keeping torchvision's state-dict keys.

    Blocks keep the names ``0, 1, ...`` (so ``layer3.4.conv2.weight`` is the same key as in torchvision) and the
    units are extra children ``glore1, glore2, ...`` registered in forward order: ``named_children()`` lists
    ``0, glore1, 1, 2, glore2, ...`` and ``forward`` runs them in that order. Indexing, ``len`` and iteration are
    over the blocks only, as in torchvision (``model.layer4[-1]`` is still the last block); reach a unit by
    name (``model.layer3.glore1``) or through :attr:`units`.

    Args:
        blocks: the stage's blocks, in order.
        units: 1-based block index -> the unit that runs after that block.
    """

    def __init__(self, blocks: Sequence[nn.Module], units: Mapping[int, nn.Module] | None = None) -> None:
        units = dict(units or {})
        bad = [i for i in units if not 1 <= i <= len(blocks)]
        if bad:
            raise ValueError(f"Stage: unit positions must be 1-based block indices in 1..{len(blocks)}, got {bad}")
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        count = 0
        for i, block in enumerate(blocks):
            modules[str(i)] = block
            if i + 1 in units:
                count += 1
                modules[f"glore{count}"] = units[i + 1]
        super().__init__(modules)

    @property
    def blocks(self) -> list[nn.Module]:
        """The blocks, without the units."""
        return [m for name, m in self._modules.items() if not name.startswith("glore")]

    @property
    def units(self) -> dict[str, nn.Module]:
        """The units by name, ``{"glore1": ...}``, in forward order."""
        return {name: m for name, m in self._modules.items() if name.startswith("glore")}

    def unit_positions(self) -> tuple[int, ...]:
        """The 1-based block indices after which the units sit."""
        positions, seen = [], 0
        for name in self._modules:
            if name.startswith("glore"):
                positions.append(seen)
            else:
                seen += 1
        return tuple(positions)

    def __getitem__(self, idx: int | slice | str) -> Any:  # type: ignore[override]
        if isinstance(idx, str):
            return self._modules[idx]
        if isinstance(idx, slice):
            return nn.Sequential(*self.blocks[idx])
        return self.blocks[idx]

    def __len__(self) -> int:
        return len(self.blocks)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.blocks)

    def forward(self, x: Any) -> Any:
        """Run blocks and units in forward order (``named_children()`` order)."""
        for module in self._modules.values():
            x = module(x)
        return x
