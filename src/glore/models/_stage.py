"""The stage container: a stage's blocks with GloRe units between them, keeping torchvision's state-dict keys.

One rule makes block access, iteration and module surgery agree: **positions count blocks, and a unit belongs to
the block it follows.** Indexing, ``len``, ``stage[i] = m``, ``insert``, ``append``, ``pop`` and ``del`` count
blocks (torchvision's meaning: ``model.layer4[-1]`` is the last block, ``len(model.layer3)`` its depth), and a
unit stays right after its block through all of them. Iteration yields what ``forward`` runs, blocks and units in
order, so anything that runs a stage by iterating it (``nn.Sequential.forward`` itself, timm's ``checkpoint_seq``
with ``flatten=True``, ``nn.Sequential(*stage)``) runs the units too. So ``len(list(stage))`` is ``len(stage)``
plus the number of units; ``stage.blocks`` is the list of blocks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from torch import nn

__all__ = ["Stage"]

UNIT_PREFIX = "glore"


def _is_unit_name(name: str) -> bool:
    return name.startswith(UNIT_PREFIX)


class Stage(nn.Sequential):
    """A stage: a sequence of blocks with GloRe units between them, keeping torchvision's state-dict keys.

    Blocks are named ``0, 1, ...`` (so ``layer3.4.conv2.weight`` is torchvision's key) and units ``glore1,
    glore2, ...`` in forward order: ``named_children()`` lists ``0, glore1, 1, 2, glore2, ...`` and ``forward``
    runs them in that order. Names are kept equal to this layout after every change (blocks renumbered from 0,
    units from 1), so a changed stage still saves and loads like a freshly built one.

    - ``stage[i]``, ``len(stage)``: the blocks (``stage[i:j]`` is a new Stage of those blocks and their units).
    - ``stage[i] = m``: replaces block i; its unit stays after it.
    - ``insert(i, m)``, ``append(m)``, ``extend(ms)``: add blocks; the new block i goes right before the old block
      i (after the unit of block i-1), units stay with their blocks.
    - ``pop(i)``, ``del stage[i]``: remove a block; refused while a unit follows it (remove the unit first with
      ``del stage.glore1``, after which the remaining units are renumbered).
    - ``iter(stage)``: blocks and units in forward order, exactly what ``forward`` runs.

    Args:
        blocks: the stage's blocks, in order.
        units: 1-based block index -> the unit that runs after that block.
    """

    def __init__(self, blocks: Sequence[nn.Module], units: Mapping[int, nn.Module] | None = None) -> None:
        units = dict(units or {})
        bad = [i for i in units if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= len(blocks)]
        if bad:
            raise ValueError(f"Stage: unit positions must be 1-based block indices in 1..{len(blocks)}, got {bad}")
        super().__init__()
        self._rebuild([(block, [units[i + 1]] if i + 1 in units else []) for i, block in enumerate(blocks)])

    # ------------------------------------------------------------------------------------------------------------
    # The layout.

    def _groups(self) -> list[tuple[nn.Module, list[nn.Module]]]:
        """``[(block, [units after it]), ...]`` in forward order."""
        groups: list[tuple[nn.Module, list[nn.Module]]] = []
        for name, module in self._modules.items():
            if _is_unit_name(name):
                groups[-1][1].append(module)  # the constructor and every change keep a block first
            else:
                groups.append((module, []))
        return groups

    def _rebuild(self, groups: Iterable[tuple[nn.Module, Sequence[nn.Module]]]) -> None:
        """Lay the stage out again from ``(block, units)`` groups, with fresh names in forward order."""
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        count = 0
        for i, (block, units) in enumerate(groups):
            modules[str(i)] = self._checked(block, f"block {i}")
            for unit in units:
                count += 1
                modules[f"{UNIT_PREFIX}{count}"] = self._checked(unit, f"unit {UNIT_PREFIX}{count}")
        self._modules.clear()
        for name, module in modules.items():
            self.add_module(name, module)

    @staticmethod
    def _checked(module: object, what: str) -> nn.Module:
        if not isinstance(module, nn.Module):
            raise TypeError(f"Stage: {what} must be an nn.Module, got {type(module).__name__}")
        return module

    def _block_index(self, idx: object, *, insert: bool = False) -> int:
        """A block index (negative allowed) as a non-negative one; ``insert`` allows ``len`` and clamps as list."""
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise TypeError(f"Stage: block indices must be ints, got {idx!r} of type {type(idx).__name__}")
        size = len(self)
        if insert:
            return min(max(idx + size if idx < 0 else idx, 0), size)
        if not -size <= idx < size:
            raise IndexError(f"Stage: block index {idx} out of range for a stage of {size} blocks")
        return idx % size

    @property
    def blocks(self) -> list[nn.Module]:
        """The blocks, without the units."""
        return [m for name, m in self._modules.items() if not _is_unit_name(name)]

    @property
    def units(self) -> dict[str, nn.Module]:
        """The units by name, ``{"glore1": ...}``, in forward order."""
        return {name: m for name, m in self._modules.items() if _is_unit_name(name)}

    def unit_positions(self) -> tuple[int, ...]:
        """The 1-based block indices after which the units sit."""
        positions, seen = [], 0
        for name in self._modules:
            if _is_unit_name(name):
                positions.append(seen)
            else:
                seen += 1
        return tuple(positions)

    # ------------------------------------------------------------------------------------------------------------
    # Block access: positions count blocks.

    def __getitem__(self, idx: int | slice | str) -> Any:  # type: ignore[override]
        """Block ``idx``; a slice gives a new Stage of those blocks with their units; a name gives that child."""
        if isinstance(idx, str):
            return self._modules[idx]
        groups = self._groups()
        if isinstance(idx, slice):
            picked = groups[idx]
            stage = Stage([])
            stage._rebuild(picked)
            return stage
        return groups[self._block_index(idx)][0]

    def __len__(self) -> int:
        """The number of blocks (units not counted)."""
        return sum(1 for name in self._modules if not _is_unit_name(name))

    def __iter__(self) -> Iterator[nn.Module]:
        """Blocks and units in forward order: exactly what ``forward`` runs."""
        return iter(list(self._modules.values()))

    # ------------------------------------------------------------------------------------------------------------
    # Surgery: positions count blocks, units stay with their block.

    def __setitem__(self, idx: int, module: nn.Module) -> None:  # type: ignore[override]
        """Replace block ``idx``; a unit after it stays there."""
        if isinstance(idx, slice):
            raise TypeError("Stage: assign blocks one at a time (stage[i] = block), not through a slice")
        self.add_module(str(self._block_index(idx)), self._checked(module, "the new block"))

    def __delitem__(self, idx: int | slice) -> None:  # type: ignore[override]
        """Remove block(s) ``idx``; refused while a unit follows one of them."""
        groups = self._groups()
        drop = range(len(groups))[idx] if isinstance(idx, slice) else [self._block_index(idx)]
        carrying = [i for i in drop if groups[i][1]]
        if carrying:
            names = [name for name, pos in zip(self.units, self.unit_positions(), strict=True) if pos - 1 in carrying]
            raise ValueError(
                f"Stage: block(s) {carrying} are followed by unit(s) {names}; remove those first "
                f"(del stage.{names[0]}) or replace the block in place (stage[i] = block)"
            )
        self._rebuild(g for i, g in enumerate(groups) if i not in set(drop))

    def __delattr__(self, name: str) -> None:
        """``del stage.glore1`` removes that unit; the remaining units are renumbered in forward order."""
        super().__delattr__(name)
        if _is_unit_name(name):
            self._rebuild(self._groups())

    def insert(self, index: int, module: nn.Module) -> Stage:  # type: ignore[override]
        """Insert a block so that it becomes block ``index`` (right before the old block ``index``)."""
        groups = self._groups()
        groups.insert(self._block_index(index, insert=True), (self._checked(module, "the new block"), []))
        self._rebuild(groups)
        return self

    def append(self, module: nn.Module) -> Stage:  # type: ignore[override]
        """Add a block at the end."""
        return self.insert(len(self), module)

    def extend(self, sequential: Iterable[nn.Module]) -> Stage:  # type: ignore[override]
        """Add blocks at the end."""
        for module in list(sequential):
            self.append(module)
        return self

    def pop(self, index: int | slice = -1) -> nn.Module:  # type: ignore[override]
        """Remove block ``index`` and return it; refused while a unit follows it (see ``del``)."""
        if isinstance(index, slice):
            raise TypeError("Stage: pop takes one block index, not a slice (use del stage[i:j])")
        block = self[index]
        del self[index]
        return block

    def _refuse_repeat(self, other: object) -> Stage:
        raise TypeError("Stage: repeating a stage with * would share its blocks and units; build a new Stage")

    __mul__ = __rmul__ = __imul__ = _refuse_repeat  # type: ignore[assignment]

    def __iadd__(self, other: Iterable[nn.Module]) -> Stage:  # type: ignore[override]
        raise TypeError("Stage: use stage.extend(blocks) to add blocks (+= would add units as blocks)")

    def forward(self, x: Any) -> Any:
        """Run blocks and units in forward order (``named_children()`` order, the order ``iter`` gives)."""
        for module in self:
            x = module(x)
        return x
