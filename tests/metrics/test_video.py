"""VideoMeter: clip and video accuracy against a direct computation, views aggregated once under 2 processes."""

from __future__ import annotations

import csv

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from glore.metrics.video import VideoMeter

NUM_VIDEOS, NUM_VIEWS, NUM_CLASSES = 5, 3, 6


def views():
    """Logits of every view (video-major), labels and video indices."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(NUM_VIDEOS * NUM_VIEWS, NUM_CLASSES, generator=g) * 2
    labels = torch.arange(NUM_VIDEOS).repeat_interleave(NUM_VIEWS) % NUM_CLASSES
    videos = torch.arange(NUM_VIDEOS).repeat_interleave(NUM_VIEWS)
    return logits, labels, videos


def expected() -> dict[str, float]:
    logits, labels, _ = views()
    clip_top1 = (logits.argmax(1) == labels).double().mean().item()
    mean = logits.double().softmax(1).view(NUM_VIDEOS, NUM_VIEWS, NUM_CLASSES).mean(1)  # (V, C)
    video_labels = labels.view(NUM_VIDEOS, NUM_VIEWS)[:, 0]
    video_top1 = (mean.argmax(1) == video_labels).double().mean().item()
    video_top5 = (mean.topk(5, 1).indices == video_labels[:, None]).any(1).double().mean().item()
    return {"clip_top1": clip_top1, "video_top1": video_top1, "video_top5": video_top5}


def test_video_accuracy_averages_the_softmax_of_each_videos_views(tmp_path):
    logits, labels, videos = views()
    meter = VideoMeter(NUM_CLASSES, NUM_VIDEOS, NUM_VIEWS)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))  # views in any order
    for chunk in order.split(4):
        meter.update(logits[chunk], labels[chunk], {"video": videos[chunk].tolist()})
    out = meter.compute()
    for key, value in expected().items():
        assert out[key] == pytest.approx(value), key
    assert out["count"] == NUM_VIDEOS * NUM_VIEWS and out["videos"] == NUM_VIDEOS and out["incomplete_videos"] == 0
    indices, mean, video_labels = meter.video_scores()
    assert indices.tolist() == list(range(NUM_VIDEOS))
    torch.testing.assert_close(mean, logits.double().softmax(1).view(NUM_VIDEOS, NUM_VIEWS, NUM_CLASSES).mean(1))
    assert video_labels.tolist() == labels.view(NUM_VIDEOS, NUM_VIEWS)[:, 0].tolist()
    # the video task writes them: one row per video, its top-5 classes by averaged probability
    from glore.tasks.video import write_video_predictions

    names = [f"c{k}" for k in range(NUM_CLASSES)]
    write_video_predictions(tmp_path / "p.csv", meter, names, [f"v{k}.mp4" for k in range(NUM_VIDEOS)])
    rows = list(csv.reader(open(tmp_path / "p.csv")))
    assert len(rows) == NUM_VIDEOS + 1 and rows[0][:4] == ["video", "name", "label", "top1"]
    top = mean[1].topk(5)
    assert rows[2][:3] == ["1", "v1.mp4", names[int(video_labels[1])]]
    assert rows[2][3:8] == [names[c] for c in top.indices.tolist()]
    assert rows[2][8] == " ".join(f"{p:.4f}" for p in top.values.tolist())


def test_a_view_counted_twice_is_an_error():
    logits, labels, videos = views()
    meter = VideoMeter(NUM_CLASSES, NUM_VIDEOS, NUM_VIEWS)
    meter.update(logits, labels, {"video": videos.tolist()})
    meter.update(logits[:1], labels[:1], {"video": [0]})
    with pytest.raises(ValueError, match="video 0 was evaluated 4 times, more than its 3 views"):
        meter.compute()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_views"):
        VideoMeter(3, 2, 0)
    meter = VideoMeter(3, 2, 1)
    with pytest.raises(ValueError, match="meta: expected a 'video' entry"):
        meter.update(torch.zeros(1, 3), torch.zeros(1, dtype=torch.long), {})


def _worker(rank: int, world: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    from glore.engine.distributed import ShardSampler

    logits, labels, videos = views()
    meter = VideoMeter(NUM_CLASSES, NUM_VIDEOS, NUM_VIEWS)
    # The engine's evaluation sharding: views of one video land on both processes.
    shard = list(ShardSampler(range(len(labels)), num_replicas=world, rank=rank))
    index = torch.tensor(shard)
    meter.update(logits[index], labels[index], {"video": videos[index].tolist()})
    meter.reduce("cpu")
    result = meter.compute()
    if rank == 0:
        torch.save(result, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_views_are_aggregated_once_under_two_processes(tmp_path):
    out = tmp_path / "result.pt"
    mp.spawn(_worker, args=(2, f"file://{tmp_path / 'store'}", str(out)), nprocs=2, join=True)
    result = torch.load(out)
    assert result["count"] == NUM_VIDEOS * NUM_VIEWS and result["videos"] == NUM_VIDEOS
    for key, value in expected().items():
        assert result[key] == pytest.approx(value), key
