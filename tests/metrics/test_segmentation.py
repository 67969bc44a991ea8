"""SegmentationMeter: exact IoU/iIoU math, and agreement with cityscapesScripts' own evaluation on generated PNGs."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from glore.data import collate, create_dataset
from glore.data.cityscapes import LABEL_TO_TRAIN, TRAIN_TO_LABEL
from glore.metrics import SegmentationMeter

CITY = "testcity"


def _write_cityscapes(root: Path, num_images: int = 5, size: tuple[int, int] = (40, 56), seed: int = 0) -> list:
    """Cityscapes val layout with images, labelIds, instanceIds and prediction labelIds PNGs.

    Labels mix evaluated and ignored ids (void, parking, caravan); instances of person, rider, car, bus, bicycle and
    (ignored in evaluation) caravan; a car crowd region without an instance id; predictions are the ground truth
    with a third of the pixels replaced by random classes, some pixels predicted "unlabeled" (labelId 0).
    """
    rng = np.random.default_rng(seed)
    h, w = size
    gt_files, pred_files = [], []
    eval_ids = [int(i) for i in TRAIN_TO_LABEL]
    for index in range(num_images):
        stem = f"{CITY}_000000_{index:06d}"
        labels = rng.choice([*eval_ids, 0, 4, 9, 14], size=(h // 8, w // 8))
        labels = np.kron(labels, np.ones((8, 8), dtype=np.int64)).astype(np.uint8)  # (h, w) blocks
        instances = labels.astype(np.int32)
        counter: dict[int, int] = {}
        for label_id in rng.choice([24, 25, 26, 26, 28, 29, 33], size=6):
            y, x = int(rng.integers(0, h - 6)), int(rng.integers(0, w - 6))
            dy, dx = int(rng.integers(3, 16)), int(rng.integers(3, 20))
            labels[y : y + dy, x : x + dx] = label_id
            counter[int(label_id)] = counter.get(int(label_id), 0) + 1
            instances[y : y + dy, x : x + dx] = int(label_id) * 1000 + counter[int(label_id)] - 1
        labels[:3, :10] = 26  # a car crowd: labelled car, no instance id
        instances[:3, :10] = 26
        train = LABEL_TO_TRAIN[labels]
        pred = np.where(train == 255, rng.integers(0, 19, size=(h, w)), train)
        noisy = rng.random((h, w)) < 0.33
        pred = np.where(noisy, rng.integers(0, 19, size=(h, w)), pred)
        pred_ids = TRAIN_TO_LABEL[pred]
        pred_ids[rng.random((h, w)) < 0.03] = 0
        gt_dir = root / "gtFine" / "val" / CITY
        img_dir = root / "leftImg8bit" / "val" / CITY
        pred_dir = root / "pred"
        for folder in (gt_dir, img_dir, pred_dir):
            folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(img_dir / f"{stem}_leftImg8bit.png")
        Image.fromarray(labels).save(gt_dir / f"{stem}_gtFine_labelIds.png")
        Image.fromarray(instances.astype(np.uint16)).save(gt_dir / f"{stem}_gtFine_instanceIds.png")
        Image.fromarray(pred_ids).save(pred_dir / f"{stem}_pred.png")
        gt_files.append(str(gt_dir / f"{stem}_gtFine_labelIds.png"))
        pred_files.append(str(pred_dir / f"{stem}_pred.png"))
    return [gt_files, pred_files]


def _official(gt_files: list[str], pred_files: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    # cityscapesscripts is a dev dependency (pyproject.toml): the oracle must be there, not skipped.
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev

    if not hasattr(np, "in1d"):  # removed in NumPy 2.4; the script still calls it (= flattened np.isin)
        monkeypatch.setattr(
            np, "in1d", lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert), raising=False
        )
    args = copy.copy(ev.args)
    args.quiet = True
    args.JSONOutput = False
    args.evalInstLevelScore = True
    args.exportFile = str(tmp_path / "result.json")
    return ev.evaluateImgLists(pred_files, gt_files, args)


def _glore(root: Path, pred_files: list[str], batch_size: int) -> SegmentationMeter:
    dataset = create_dataset("cityscapes", root, "val", instances=True)
    meter = SegmentationMeter.for_dataset(dataset)
    preds = {Path(p).name[: -len("_pred.png")]: p for p in pred_files}
    label_to_train = np.where(LABEL_TO_TRAIN == 255, 255, LABEL_TO_TRAIN)
    for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        pred = np.stack([label_to_train[np.asarray(Image.open(preds[i]))] for i in batch.meta["id"]])
        meter.update(torch.from_numpy(pred), batch.targets, batch.meta)
    meter.reduce()
    return meter


@pytest.mark.parametrize("batch_size", [1, 2])
def test_agrees_with_cityscapesscripts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_size: int) -> None:
    gt_files, pred_files = _write_cityscapes(tmp_path)
    official = _official(gt_files, pred_files, tmp_path, monkeypatch)
    meter = _glore(tmp_path, pred_files, batch_size)
    ours = meter.compute()
    assert ours["miou"] == pytest.approx(official["averageScoreClasses"], abs=1e-6)
    assert ours["iiou"] == pytest.approx(official["averageScoreInstClasses"], abs=1e-6)
    assert ours["miou_category"] == pytest.approx(official["averageScoreCategories"], abs=1e-6)
    assert ours["iiou_category"] == pytest.approx(official["averageScoreInstCategories"], abs=1e-6)
    details = meter.details()
    for kind, key in (("iou", "classScores"), ("iiou", "classInstScores"), ("iou_category", "categoryScores")):
        for name, value in details[kind].items():
            assert value == pytest.approx(official[key][name], abs=1e-9, nan_ok=True), (kind, name)
    for name, value in details["iiou_category"].items():
        assert value == pytest.approx(official["categoryInstScores"][name], abs=1e-9)
    # The fixture exercises what it claims: several instance classes, ignored pixels, imperfect predictions.
    assert sum(not math.isnan(v) for v in details["iiou"].values()) >= 4
    assert 0.3 < ours["miou"] < 0.95 and ours["count"] == 5


def _meter(**kwargs: object) -> SegmentationMeter:
    return SegmentationMeter(3, ignore_index=255, classes=["a", "b", "c"], **kwargs)


def test_iou_by_hand() -> None:
    gt = torch.tensor([[[0, 0, 1, 1, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1, 1, 0, 2]]])
    meter = _meter(categories={"ab": [0, 1], "c": [2]})
    meter.update(pred, gt)
    out = meter.compute()
    # class 0: tp 1, fn 1, fp 1 (the class-2 pixel); class 1: tp 2, fp 1; class 2: tp 0, fn 1; ignored pixel unscored
    assert out["iou/a"] == pytest.approx(1 / 3)
    assert out["iou/b"] == pytest.approx(2 / 3)
    assert out["iou/c"] == 0.0
    assert out["miou"] == pytest.approx((1 / 3 + 2 / 3) / 3)
    assert out["pixel_acc"] == pytest.approx(3 / 5)
    # category ab: tp 4 (all ab pixels predicted ab), fp 1 (the c pixel predicted a); c: tp 0, fn 1
    assert meter.details()["iou_category"] == {"ab": pytest.approx(4 / 5), "c": 0.0}
    assert out["count"] == 1.0


def test_logits_and_unpredicted_pixels() -> None:
    gt = torch.tensor([[[0, 1, 2, 2]]])
    logits = torch.zeros(1, 3, 1, 4)
    logits[0, 0, 0, 0] = logits[0, 1, 0, 1] = logits[0, 2, 0, 2] = 1.0  # pixel 3: a tie, argmax -> class 0
    meter = _meter()
    meter.update(logits, gt)
    assert meter.compute()["iou/c"] == pytest.approx(1 / 2)
    # A prediction that is no class (the ignore label) is a miss for the true class and a false positive for none.
    meter = _meter()
    meter.update(torch.tensor([[[255, 1, 2, 2]]]), gt)
    out = meter.compute()
    assert out["iou/a"] == 0.0 and out["iou/b"] == 1.0 and out["iou/c"] == 1.0


def test_class_never_seen_is_nan_and_left_out_of_the_mean() -> None:
    meter = _meter()
    meter.update(torch.tensor([[[0, 0]]]), torch.tensor([[[0, 0]]]))
    out = meter.compute()
    assert math.isnan(out["iou/b"]) and out["miou"] == 1.0


def test_iiou_weights_by_instance_size() -> None:
    # class 1 has instances (avg size 4): one of 4 pixels (3 right), one of 2 pixels (0 right); ids label*1000 + k
    meter = _meter(instance_sizes={1: 4.0}, label_to_class=[0, 1, 2], categories={"x": [1]})
    gt = torch.tensor([[[1, 1, 1, 1, 1, 1, 0, 0]]])
    inst = torch.tensor([[[1000 + 1, 1001, 1001, 1001, 1002, 1002, 0, 0]]], dtype=torch.int32)
    pred = torch.tensor([[[1, 1, 1, 0, 0, 0, 1, 0]]])
    meter.update(pred, {"mask": gt, "instances": inst})
    tp_w = 3 * 4 / 4 + 0 * 4 / 2
    fn_w = 1 * 4 / 4 + 2 * 4 / 2
    fp = 1
    assert meter.compute()["iiou"] == pytest.approx(tp_w / (tp_w + fp + fn_w))
    assert meter.compute()["iiou_category"] == pytest.approx(tp_w / (tp_w + fp + fn_w))


def test_iiou_nan_without_instance_targets_and_absent_without_spec() -> None:
    meter = _meter(instance_sizes={1: 4.0}, label_to_class=[0, 1, 2])
    meter.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long))
    assert math.isnan(meter.compute()["iiou"])
    plain = _meter()
    plain.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long))
    assert "iiou" not in plain.compute() and "miou_category" not in plain.compute()


def test_batches_add_up_like_one() -> None:
    gen = torch.Generator().manual_seed(0)
    gt = torch.randint(0, 3, (4, 5, 6), generator=gen)
    gt[gt == 2] = 255
    pred = torch.randint(0, 3, (4, 5, 6), generator=gen)
    whole, parts = _meter(), _meter()
    whole.update(pred, gt)
    for i in range(4):
        parts.update(pred[i : i + 1], gt[i : i + 1])
    assert torch.equal(whole.conf, parts.conf)
    assert int(whole.conf.sum()) == int((gt != 255).sum())


def test_bad_input() -> None:
    meter = _meter()
    with pytest.raises(ValueError, match=r"targets: expected a mask of the predictions' shape \(1, 2, 2\)"):
        meter.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="preds: expected 3 class scores"):
        meter.update(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    meter.update(torch.zeros(1, 1, 2, dtype=torch.long), torch.tensor([[[0, 7]]]))
    with pytest.raises(ValueError, match="1 pixels were neither a class index in \\[0, 3\\) nor the ignore label 255"):
        meter.compute()
    with pytest.raises(ValueError, match="ignore_index"):
        SegmentationMeter(3, ignore_index=1)
