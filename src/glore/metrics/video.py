"""Video classification metrics: clip accuracy (every view on its own) and video accuracy (the softmax averaged over
all views of a video, the convention of the GloRe and Non-local papers' "video top-1").

``VideoMeter`` keeps, on the device, the clip top-k hits and, per video, the sum of its views' softmax and the number
of views seen. ``reduce()`` sums them over the processes, so views of one video may be evaluated by different
processes; ``compute()`` checks that no view was counted twice and reports videos with missing views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ._reduce import all_reduce_, is_distributed

__all__ = ["VideoMeter"]


class VideoMeter:
    """Clip and video top-k accuracy over the views of each video.

    Args:
        num_classes: number of classes.
        num_videos: number of videos (indices ``meta["video"]`` are in ``[0, num_videos)``).
        num_views: views of every video (temporal clips x spatial crops); a video with more is an error.
        ks: the k of the top-k accuracies.

    ``video_scores()`` gives each seen video's averaged softmax, from which a task writes per-video predictions.
    """

    def __init__(
        self,
        num_classes: int,
        num_videos: int,
        num_views: int,
        ks: Sequence[int] = (1, 5),
    ) -> None:
        for name, value in (("num_classes", num_classes), ("num_videos", num_videos), ("num_views", num_views)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not ks or any(not isinstance(k, int) or k < 1 for k in ks):
            raise ValueError(f"ks: expected positive ints, got {ks!r}")
        self.num_classes, self.num_videos, self.num_views, self.ks = num_classes, num_videos, num_views, tuple(ks)
        self.clip_hits = torch.zeros(len(self.ks), dtype=torch.int64)
        self.clips = torch.zeros((), dtype=torch.int64)
        self.prob_sum = torch.zeros(num_videos, num_classes, dtype=torch.float64)
        self.views = torch.zeros(num_videos, dtype=torch.int64)
        self.labels = torch.full((num_videos,), -1, dtype=torch.int64)

    def _to(self, device: torch.device) -> None:
        if self.prob_sum.device != device:
            for name in ("clip_hits", "clips", "prob_sum", "views", "labels"):
                setattr(self, name, getattr(self, name).to(device))

    @torch.no_grad()
    def update(self, logits: torch.Tensor, targets: torch.Tensor, meta: Mapping[str, Sequence[Any]]) -> None:
        """Add a batch of views.

        Args:
            logits: (n, num_classes) scores of n views.
            targets: (n,) class indices.
            meta: the batch's metadata; ``meta["video"]`` the video index of each view.
        """
        if logits.dim() != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(f"logits: expected shape (n, {self.num_classes}), got {tuple(logits.shape)}")
        if "video" not in meta:
            raise ValueError("meta: expected a 'video' entry (the video index of each view)")
        self._to(logits.device)
        videos = torch.as_tensor(list(meta["video"]), dtype=torch.int64, device=logits.device)  # (n,)
        targets = targets.long().to(logits.device)
        maxk = min(max(self.ks), self.num_classes)
        hit = logits.topk(maxk, dim=1).indices.eq(targets.view(-1, 1))  # (n, maxk)
        self.clip_hits += torch.stack([hit[:, : min(k, maxk)].any(dim=1).sum() for k in self.ks])
        self.clips += targets.numel()
        probs = logits.double().softmax(dim=1)  # (n, C)
        self.prob_sum.index_add_(0, videos, probs)
        self.views.index_add_(0, videos, torch.ones_like(videos))
        self.labels.scatter_(0, videos, targets)

    def reduce(self, device: torch.device | str = "cpu") -> None:
        """Sum over all processes (a no-op without a process group). Call it on every process."""
        if not is_distributed():
            return
        self._to(torch.device(device))
        all_reduce_(self.clip_hits, self.clips, self.prob_sum, self.views)
        # Every process saw some of the videos' labels: the largest is the label (unseen ones stay -1).
        all_reduce_(self.labels, op="max")

    def video_scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The videos with at least one view: their indices (V,), their softmax averaged over their views (V, C,
        float64) and their labels (V,), on the CPU. After ``reduce()`` on every process, the whole dataset's.

        Raises:
            ValueError: a video got more views than ``num_views`` (views were evaluated twice).
        """
        views, labels, prob_sum = self.views.cpu(), self.labels.cpu(), self.prob_sum.cpu()
        over = (views > self.num_views).nonzero().flatten().tolist()
        if over:
            raise ValueError(
                f"views: video {over[0]} was evaluated {int(views[over[0]])} times, more than its {self.num_views} "
                "views (a sampler evaluated some views twice)"
            )
        seen = views > 0
        mean = prob_sum[seen] / views[seen].unsqueeze(1)  # (V, C) / (V, 1): the averaged softmax of each seen video
        return seen.nonzero().flatten(), mean, labels[seen]

    def compute(self) -> dict[str, float]:
        """``clip_top{k}``, ``video_top{k}``, ``count`` (views), ``videos`` (videos with at least one view).

        Raises:
            ValueError: a video got more views than ``num_views`` (views were evaluated twice).
        """
        indices, mean, seen_labels = self.video_scores()
        views = self.views.cpu()
        clips = int(self.clips)
        out: dict[str, float] = {}
        for k, hits in zip(self.ks, self.clip_hits.cpu().tolist(), strict=True):
            out[f"clip_top{k}"] = hits / clips if clips else float("nan")
        maxk = min(max(self.ks), self.num_classes)
        top = mean.topk(maxk, dim=1).indices if len(mean) else torch.zeros(0, maxk, dtype=torch.int64)
        hit = top.eq(seen_labels.view(-1, 1))  # (V, maxk)
        for k in self.ks:
            accuracy = hit[:, : min(k, maxk)].any(dim=1).double().mean() if len(mean) else torch.tensor(float("nan"))
            out[f"video_top{k}"] = float(accuracy)
        out["count"] = float(clips)
        out["videos"] = float(len(indices))
        out["incomplete_videos"] = float(((views > 0) & (views < self.num_views)).sum())
        return out
