"""The segmentation task: OHEM against a direct computation, sliding-window and flip inference against whole-image
inference on translation-equivariant networks, the aux loss, prediction PNGs, and a short run on built-in data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from glore.engine import load_config
from glore.tasks.segmentation import (
    IGNORE_INDEX,
    SegmentationTask,
    ohem_cross_entropy,
    predict_probabilities,
    save_prediction_png,
    sliding_window_logits,
)


class Pointwise(nn.Module):
    """A 1x1 conv: translation- and flip-equivariant, so window and flip inference must equal whole-image."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x)}


def test_ohem_keeps_the_hard_pixels_and_at_least_min_kept():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5) * 3
    target = torch.randint(0, 3, (2, 4, 5))
    target[0, 0, :2] = IGNORE_INDEX
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none").flatten()
    valid = target.flatten() != IGNORE_INDEX
    prob = torch.exp(-per_pixel[valid])
    expected = per_pixel[valid][prob <= 0.5].mean()
    assert torch.allclose(ohem_cross_entropy(logits, target, thresh=0.5, min_kept=0), expected)
    # min_kept larger than the hard pixels: the min_kept hardest are kept.
    hardest = per_pixel[valid].sort(descending=True).values[:30].mean()
    assert torch.allclose(ohem_cross_entropy(logits, target, thresh=1e-6, min_kept=30), hardest)
    # every pixel ignored: a zero loss that still has a gradient path
    assert ohem_cross_entropy(logits, torch.full_like(target, IGNORE_INDEX)).item() == 0.0
    with pytest.raises(ValueError, match="task_args.ohem.thresh"):
        ohem_cross_entropy(logits, target, thresh=0.0)


@pytest.mark.parametrize(
    ("size", "crop", "stride"), [((12, 16), (8, 8), (4, 4)), ((12, 16), (5, 7), (3, 2)), ((6, 6), (8, 8), (4, 4))]
)
def test_sliding_window_equals_whole_image_for_an_equivariant_network(size, crop, stride):
    net = Pointwise().eval()
    x = torch.randn(2, 3, *size)
    whole = net(x)["out"]
    assert torch.allclose(sliding_window_logits(net, x, crop, stride), whole, atol=1e-6)


def test_flip_and_slide_probabilities_equal_whole_for_an_equivariant_network():
    net = Pointwise().eval()
    x = torch.randn(1, 3, 10, 14)
    whole = predict_probabilities(net, x)
    assert torch.allclose(whole.sum(dim=1), torch.ones(1, 10, 14), atol=1e-6)
    both = predict_probabilities(net, x, mode="slide", crop=(6, 6), stride=(4, 4), flip=True)
    assert torch.allclose(both, whole, atol=1e-6)
    # multi-scale: the result is at the requested size and still a distribution
    multi = predict_probabilities(net, x, scales=(0.5, 1.0, 1.5), size=(20, 28))
    assert multi.shape == (1, 4, 20, 28) and torch.allclose(multi.sum(1), torch.ones(1, 20, 28), atol=1e-5)
    with pytest.raises(ValueError, match="task_args.mode"):
        predict_probabilities(net, x, mode="tiles")


def test_loss_adds_the_weighted_aux_loss_in_training_only():
    task = SegmentationTask(load_config({"task": "segmentation", "task_args": {"aux_weight": 0.25}}))
    out, aux = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    mask = torch.randint(0, 3, (2, 4, 4))
    main = F.cross_entropy(out, mask)
    both = task.loss({"out": out, "aux": aux}, mask, train=True)
    assert torch.allclose(both, main + 0.25 * F.cross_entropy(aux, mask))
    assert torch.allclose(task.loss({"out": out, "aux": aux}, {"mask": mask}, train=False), main)


def test_task_args_are_checked():
    with pytest.raises(ValueError, match="task_args.window: unknown option; valid: aux_weight"):
        SegmentationTask(load_config({"task": "segmentation", "task_args": {"window": 3}}))
    with pytest.raises(ValueError, match="task_args.crop"):
        SegmentationTask(load_config({"task": "segmentation", "task_args": {"crop": [0, 4]}}))


def test_cityscapes_predictions_are_label_ids_named_for_the_official_script(tmp_path):
    from glore.data.cityscapes import train_to_label_ids

    label = torch.tensor([[0, 1, 18], [255, 13, 11]])
    written = save_prediction_png(
        label, tmp_path / "preds", "aachen_000000_000019", cityscapes=True, color_folder=tmp_path / "colors"
    )
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "preds/aachen_000000_000019_pred_labelIds.png",
        "colors/aachen_000000_000019_pred_color.png",
    ]
    with Image.open(written[0]) as png:
        assert png.mode == "L"
        assert np.array_equal(np.array(png), train_to_label_ids(label.numpy()))
    with Image.open(written[1]) as png:
        assert png.mode == "RGB" and png.size == (3, 2)
    plain = save_prediction_png(label.clamp(max=5), tmp_path, "img", cityscapes=False)
    with Image.open(plain[0]) as png:
        assert np.array_equal(np.array(png), label.clamp(max=5).numpy().astype(np.uint8))
