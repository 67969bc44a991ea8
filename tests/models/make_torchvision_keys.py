"""Write torchvision_resnet_keys.json: the state-dict keys and shapes of torchvision's ResNets.

Written from a reading of torchvision/models/resnet.py (pytorch/vision), independently of glore's code, so the
test that compares glore's keys with these can fail: ``ResNet.__init__`` registers conv1, bn1, relu, maxpool,
layer1..4, avgpool, fc; ``_make_layer`` gives the first block of a stage ``downsample = Sequential(conv1x1, norm)``
when the stride or width changes; ``BasicBlock`` registers conv1, bn1, relu, conv2, bn2, downsample and
``Bottleneck`` conv1, bn1, conv2, bn2, conv3, bn3, relu, downsample, with ``width = int(planes * base_width / 64) *
groups`` and ``expansion = 4``. Every BatchNorm2d has weight, bias, running_mean, running_var and a scalar
num_batches_tracked.

Run ``python tests/models/make_torchvision_keys.py`` to regenerate the file.
"""

from __future__ import annotations

import json
from pathlib import Path

ARCHS = {
    # name: (block, layers, groups, width_per_group)
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), 32, 4),
}


def _bn(prefix: str, chs: int) -> list[tuple[str, list[int]]]:
    return [
        (f"{prefix}.weight", [chs]),
        (f"{prefix}.bias", [chs]),
        (f"{prefix}.running_mean", [chs]),
        (f"{prefix}.running_var", [chs]),
        (f"{prefix}.num_batches_tracked", []),
    ]


def torchvision_keys(block: str, layers: tuple[int, ...], groups: int, width_per_group: int) -> list:
    keys: list[tuple[str, list[int]]] = [("conv1.weight", [64, 3, 7, 7])] + _bn("bn1", 64)
    expansion = 1 if block == "basic" else 4
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True), start=1):
        stride = 1 if stage == 1 else 2
        for i in range(blocks):
            p = f"layer{stage}.{i}"
            if block == "basic":
                keys += [(f"{p}.conv1.weight", [planes, inplanes, 3, 3])] + _bn(f"{p}.bn1", planes)
                keys += [(f"{p}.conv2.weight", [planes, planes, 3, 3])] + _bn(f"{p}.bn2", planes)
            else:
                width = int(planes * (width_per_group / 64.0)) * groups
                keys += [(f"{p}.conv1.weight", [width, inplanes, 1, 1])] + _bn(f"{p}.bn1", width)
                keys += [(f"{p}.conv2.weight", [width, width // groups, 3, 3])] + _bn(f"{p}.bn2", width)
                keys += [(f"{p}.conv3.weight", [planes * expansion, width, 1, 1])] + _bn(f"{p}.bn3", planes * expansion)
            if i == 0 and (stride != 1 or inplanes != planes * expansion):
                keys += [(f"{p}.downsample.0.weight", [planes * expansion, inplanes, 1, 1])]
                keys += _bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    keys += [("fc.weight", [1000, 512 * expansion]), ("fc.bias", [1000])]
    return keys


if __name__ == "__main__":
    out = {name: torchvision_keys(*arch) for name, arch in ARCHS.items()}
    path = Path(__file__).with_name("torchvision_resnet_keys.json")
    # One key per line, in state-dict order: {"resnet18": {"conv1.weight": [64, 3, 7, 7], ...}, ...}
    lines = []
    for name, keys in out.items():
        body = ",\n".join(f"    {json.dumps(k)}: {json.dumps(shape)}" for k, shape in keys)
        lines.append(f"  {json.dumps(name)}: {{\n{body}\n  }}")
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"wrote {path}: " + ", ".join(f"{k} {len(v)} keys" for k, v in out.items()))
