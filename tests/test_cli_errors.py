"""Users' mistakes through the installed ``glore`` command (a subprocess, as a user runs it): exit status 2, one line
``glore COMMAND: ...`` naming the argument or file, no traceback; a run folder is never overwritten silently;
``--version``, ``--print-config``, ``--debug``, Ctrl-C."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml
from PIL import Image
from support import make_tiny_recipe

from glore.cli import main

GLORE = Path(sys.executable).with_name("glore")
README = Path(__file__).resolve().parents[1] / "README.md"

# A GloRe network that trains an epoch of the built-in relational data in about a second.
RECIPE: dict[str, Any] = make_tiny_recipe(data={"train_kwargs": {"num_samples": 16}, "val_kwargs": {"num_samples": 8}})


def glore(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the installed ``glore`` command."""
    command = [str(GLORE), *(str(a) for a in args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def glore_in_process(*args: object) -> subprocess.CompletedProcess:
    """Run ``glore ARGS`` through ``glore.cli.main`` in this process (what the installed command calls), capturing
    what it prints; a subprocess per case would cost a torch import each."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def refused(*args: object, needles: tuple[str, ...] = ()) -> str:
    """Run ``glore ARGS``; require exit status 2, no traceback, and exactly one ``glore COMMAND:`` line in stderr
    containing every needle. Returns that line."""
    result = glore_in_process(*args)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"glore {args[0]}")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def files_of(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_folder(root: Path, split: str, classes: list[str], count: int = 2) -> None:
    for name in classes:
        for k in range(count):
            target = root / split / name / f"{k}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (40, 40), (60 * k, 90, 20 + 30 * len(name))).save(target)


def write_cub(root: Path, *, labels: list[str] | None = None, split: list[str] | None = None) -> Path:
    """A CUB-200-2011 tree: 2 classes, 4 images (ids 1-4, ids 1 and 3 for training); ``labels`` and ``split``
    replace the lines of image_class_labels.txt and train_test_split.txt."""
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    images = {1: 1, 2: 1, 3: 2, 4: 2}
    paths = []
    for image_id, class_id in images.items():
        rel = f"{classes[class_id - 1]}/{classes[class_id - 1][4:]}_{image_id:04d}.jpg"
        target = root / "images" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (50 * image_id, 100, 150)).save(target)
        paths.append(f"{image_id} {rel}")
    tables = {
        "images.txt": paths,
        "classes.txt": [f"{i + 1} {name}" for i, name in enumerate(classes)],
        "image_class_labels.txt": labels or [f"{i} {c}" for i, c in images.items()],
        "train_test_split.txt": split or ["1 1", "2 0", "3 1", "4 0"],
    }
    for name, lines in tables.items():
        (root / name).write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> SimpleNamespace:
    """Everything the cases refer to: recipes, two finished runs, dataset trees, bad files."""
    base = tmp_path_factory.mktemp("cli")
    ns = SimpleNamespace(base=base)
    ns.recipe = base / "tiny.yaml"
    ns.recipe.write_text(yaml.safe_dump(RECIPE))
    folder = copy.deepcopy(RECIPE)
    folder["data"].update(
        {"name": "imagefolder", "transform": "standard", "image_size": 32, "batch_size": 2, "kwargs": {}}
    )
    folder["data"].update({"train_kwargs": {}, "val_kwargs": {}})
    ns.folder = base / "folder.yaml"
    ns.folder.write_text(yaml.safe_dump(folder))
    cub = copy.deepcopy(folder)
    cub["data"].update({"name": "cub200", "val_split": "test"})
    ns.cub = base / "cub.yaml"
    ns.cub.write_text(yaml.safe_dump(cub))
    for name, train, val in (
        ("catdog", ["cat", "dog"], ["cat", "dog"]),
        ("antbee", ["ant", "bee"], ["ant", "bee"]),
        ("three", ["cat", "dog", "emu"], ["cat", "dog", "emu"]),
        ("same_count", ["cat", "dog"], ["cat", "fox"]),
        ("other_count", ["cat", "dog", "emu"], ["cat", "dog"]),
    ):
        write_folder(base / name, "train", train)
        write_folder(base / name, "val", val)
    (base / "empty" / "train").mkdir(parents=True)
    (base / "empty" / "val").mkdir(parents=True)
    (base / "noimages" / "train" / "cat").mkdir(parents=True)
    (base / "noimages" / "train" / "cat" / "notes.txt").write_text("not an image")
    write_folder(base / "noimages", "val", ["cat"])
    write_cub(base / "cub_label", labels=["1 albatross", "2 1", "3 2", "4 2"])
    write_cub(base / "cub_split", split=["1 1", "2 2", "3 1", "4 0"])
    write_cub(base / "cub_dup", labels=["1 1", "1 2", "3 2", "4 2"])
    write_cub(base / "cub_nontrain", split=["1 0", "2 0", "3 0", "4 0"])
    ns.run = base / "run"
    assert main(["train", str(ns.recipe), "--output", str(ns.run)]) == 0
    ns.folder_run = base / "folder_run"
    assert main(["train", str(ns.folder), "--set", f"data.root={base / 'catdog'}", "--output", str(ns.folder_run)]) == 0
    ns.notes = base / "notes.pt"
    ns.notes.write_text("these are not weights\n")
    ns.cut = base / "cut.pt"
    ns.cut.write_bytes((ns.run / "last.pt").read_bytes()[:300])
    ns.absent = base / "absent.pt"
    ns.afile = base / "afile"
    ns.afile.write_text("a regular file")
    ns.image = base / "catdog" / "val" / "cat" / "0.png"
    return ns


# (id, arguments given the workspace, what the one line must contain)
CASES = [
    # configuration
    ("epochs-0", lambda w: ["train", w.recipe, "--set", "train.epochs=0"], ("train.epochs", "positive")),
    ("root-null", lambda w: ["train", w.folder, "--set", "data.root=null"], ("data.root", "required")),
    (
        "root-absent",
        lambda w: ["train", w.folder, "--set", root(w, "nowhere")],
        ("data.root", "nowhere"),
    ),
    ("model-name", lambda w: ["train", w.recipe, "--set", "model.name=resnet_smal"], ("'resnet_smal'", "resnet_small")),
    ("glore-spec", lambda w: ["train", w.recipe, "--set", "model.glore=res9:1"], ("glore spec", "res9")),
    ("yaml-parse", lambda w: ["train", README], ("README.md", "line")),
    ("yaml-absent", lambda w: ["train", w.base / "nope.yaml"], ("nope.yaml",)),
    ("classes-neg", lambda w: ["train", w.recipe, "--set", "model.num_classes=-3"], ("model.num_classes", "-3")),
    ("classes-float", lambda w: ["train", w.recipe, "--set", "model.num_classes=2.5"], ("model.num_classes", "2.5")),
    ("pretrained-true", lambda w: ["train", w.recipe, "--set", "model.pretrained=true"], ("pretrained",)),
    (
        "pretrained-offline",
        lambda w: ["train", w.recipe, "--set", "model.pretrained=http://127.0.0.1:9/resnet.pth"],
        ("pretrained", "http://127.0.0.1:9/resnet.pth", "download"),
    ),
    ("pretrained-text", lambda w: ["train", w.recipe, "--set", f"model.pretrained={w.notes}"], ("notes.pt",)),
    ("pretrained-cut", lambda w: ["train", w.recipe, "--set", f"model.pretrained={w.cut}"], ("cut.pt",)),
    # checkpoints: a text file, a truncated one and a missing one wherever a checkpoint is read
    *[
        (f"{command}-{name}", lambda w, c=command, n=name: make(w, c, getattr(w, n)), (f"{name}.pt",))
        for command in ("eval", "visualize", "resume-from", "predict")
        for name in ("notes", "cut", "absent")
    ],
    # another network, class list or optimiser
    (
        "resume-other-network",
        lambda w: ["train", w.recipe, "--output", w.run, "--resume", "--set", "model.kwargs.widths=[8,8,16,32]"],
        ("does not fit the network", "shapes"),
    ),
    (
        "resume-other-classes",
        lambda w: ["train", w.folder, "--output", w.folder_run, "--resume", "--set", root(w, "three")],
        ("does not fit the network", "fc"),
    ),
    (
        "resume-other-optimiser",
        lambda w: ["train", w.recipe, "--output", w.run, "--resume", "--set", "optim.name=adamw"],
        ("optim.name", "'sgd'", "'adamw'"),
    ),
    (
        "eval-other-count",
        lambda w: [
            "eval",
            w.folder,
            "--checkpoint",
            w.folder_run / "last.pt",
            "--set",
            root(w, "three"),
        ],
        ("3 classes", "'emu'", "last.pt"),
    ),
    (
        "eval-other-names",
        lambda w: [
            "eval",
            w.folder,
            "--checkpoint",
            w.folder_run / "last.pt",
            "--set",
            root(w, "antbee"),
        ],
        ("'cat'", "'ant'", "last.pt"),
    ),
    # data layouts
    ("folder-empty", lambda w: ["train", w.folder, "--set", f"data.root={w.base / 'empty'}"], ("empty", "no class")),
    ("folder-no-images", lambda w: ["train", w.folder, "--set", f"data.root={w.base / 'noimages'}"], ("no images",)),
    (
        "splits-same-count",
        lambda w: ["train", w.folder, "--set", f"data.root={w.base / 'same_count'}"],
        ("'dog'", "'fox'", "'train'", "'val'"),
    ),
    (
        "splits-other-count",
        lambda w: ["train", w.folder, "--set", f"data.root={w.base / 'other_count'}"],
        ("3 classes", "'emu'"),
    ),
    (
        "cub-label-line",
        lambda w: ["train", w.cub, "--set", f"data.root={w.base / 'cub_label'}"],
        ("image_class_labels.txt:1", "two integers", "albatross"),
    ),
    (
        "cub-split-value",
        lambda w: ["train", w.cub, "--set", f"data.root={w.base / 'cub_split'}"],
        ("train_test_split.txt:2", "{0, 1}"),
    ),
    (
        "cub-duplicate-id",
        lambda w: ["train", w.cub, "--set", f"data.root={w.base / 'cub_dup'}"],
        ("image_class_labels.txt:2", "image id 1 appears twice"),
    ),
    (
        "cub-no-training-image",
        lambda w: ["train", w.cub, "--set", f"data.root={w.base / 'cub_nontrain'}"],
        ("train_test_split.txt", "train split"),
    ),
    # tool arguments
    ("visualize-samples-0", lambda w: ["visualize", w.run / "last.pt", "--samples", "0"], ("--samples", "got 0")),
    ("visualize-samples-neg", lambda w: ["visualize", w.run / "last.pt", "--samples", "-2"], ("--samples", "got -2")),
    ("visualize-max-nodes", lambda w: ["visualize", w.run / "last.pt", "--max-nodes", "0"], ("--max-nodes",)),
    ("visualize-unit", lambda w: ["visualize", w.run / "last.pt", "--unit", "layer9.glore1"], ("--unit", "layer9")),
    ("predict-topk", lambda w: ["predict", w.folder_run / "last.pt", w.image, "--topk", "0"], ("--topk",)),
    ("predict-not-image", lambda w: ["predict", w.folder_run / "last.pt", w.notes], ("INPUT", "notes.pt")),
    ("predict-output", lambda w: ["predict", w.folder_run / "last.pt", w.image, "--output", w.base], ("--output",)),
    ("sweep-grid-key", lambda w: ["sweep", w.recipe, "--grid", "optim.lrr=1,2", "--out", w.base / "s"], ("optim.lrr",)),
    ("sweep-metric", lambda w: ["sweep", w.recipe, "--metric", "val_miou", "--out", w.base / "s"], ("--metric",)),
    # an output folder inside a regular file
    ("train-output-in-file", lambda w: ["train", w.recipe, "--output", w.afile / "run"], ("afile", "is a file")),
    ("visualize-out-in-file", lambda w: ["visualize", w.run / "last.pt", "--out", w.afile / "v"], ("--out", "afile")),
    ("sweep-out-in-file", lambda w: ["sweep", w.recipe, "--out", w.afile / "s"], ("--out", "afile")),
    ("demo-output-in-file", lambda w: ["demo", "classification", "--output", w.afile / "d"], ("afile", "is a file")),
]
if not torch.cuda.is_available():
    CASES.append(("device-cuda", lambda w: ["train", w.recipe, "--set", "train.device=cuda"], ("train.device", "CUDA")))


def root(w: SimpleNamespace, name: str) -> str:
    return f"data.root={w.base / name}"


def make(w: SimpleNamespace, command: str, checkpoint: Path) -> list[object]:
    """The command that reads ``checkpoint`` as ``command`` does."""
    if command == "eval":
        return ["eval", w.recipe, "--checkpoint", checkpoint]
    if command == "visualize":
        return ["visualize", checkpoint]
    if command == "predict":
        return ["predict", checkpoint, w.image]
    return ["train", w.recipe, "--resume-from", checkpoint, "--output", w.base / "resumed"]


@pytest.mark.parametrize(("args", "needles"), [pytest.param(a, n, id=i) for i, a, n in CASES])
def test_mistake_answered_in_one_line(w, args, needles):
    argv = args(w)
    if argv[0] == "train" and "--output" not in argv:
        argv += ["--output", w.base / "never"]
    runs_before = {run: files_of(run) for run in (w.run, w.folder_run)}
    refused(*argv, needles=needles)
    assert not (w.base / "never").exists() and not (w.base / "s").exists()  # refused before writing anything
    assert {run: files_of(run) for run in (w.run, w.folder_run)} == runs_before


def test_sweep_summary_only_with_a_metric_the_runs_lack_keeps_summary(w):
    out = w.base / "sweep_done"
    (out / "seed=0").mkdir(parents=True)
    result = {"settings": {}, "seed": 0, "metrics": {"val_top1": 0.5}, "params_m": 1.0, "gflops": 0.1, "time_s": 2}
    (out / "seed=0" / "result.json").write_text(json.dumps(result))
    (out / "summary.md").write_text("the table as it was\n")
    refused("sweep", w.recipe, "--out", out, "--summary-only", "--metric", "val_miou", needles=("--metric", "val_top1"))
    assert (out / "summary.md").read_text() == "the table as it was\n"


def test_glore_args_without_units_is_a_one_line_warning(w):
    result = glore("train", w.recipe, "--set", "model.glore=null", "--output", w.base / "plain")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "glore_args" in line]
    assert warned == [
        "glore: warning: model.glore_args {'num_nodes': 4, 'num_state': 8} are ignored: model.glore is null, so the "
        "network has no units"
    ]


def test_a_finished_run_is_never_overwritten(w):
    before = files_of(w.run)
    line = refused("train", w.recipe, "--output", w.run, needles=("already holds a run", "--resume", "--overwrite"))
    assert str(w.run) in line
    assert files_of(w.run) == before
    # a partial run (a checkpoint, no finished epoch count) is refused the same way
    partial = w.base / "partial"
    partial.mkdir()
    (partial / "last.pt").write_bytes((w.run / "last.pt").read_bytes())
    refused("train", w.recipe, "--output", partial, needles=("already holds a run",))
    refused("train", w.recipe, "--output", w.run, "--resume", "--overwrite", needles=("--resume", "--overwrite"))
    assert files_of(w.run) == before


@pytest.mark.slow
def test_overwrite_starts_afresh_without_the_old_tensorboard_events(w):
    run = w.base / "tb_run"
    with_tb = ["--set", "output.tensorboard=true", "--output", run]
    assert glore("train", w.recipe, *with_tb).returncode == 0
    old_events = {p.name for p in (run / "tb").rglob("*") if p.is_file()}
    assert old_events
    assert glore("train", w.recipe, *with_tb, "--overwrite", "--set", "train.seed=5").returncode == 0
    new_events = {p.name for p in (run / "tb").rglob("*") if p.is_file()}
    assert new_events and not new_events & old_events
    assert torch.load(run / "last.pt", weights_only=True)["config"]["train"]["seed"] == 5
    assert len(list(csv_rows(run / "metrics.csv"))) == 1  # one epoch: the old table is gone, not appended to


def csv_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


def test_version_print_config_and_debug(w):
    from glore import __version__

    version = glore("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"glore {__version__}"
    printed = glore("train", w.recipe, "--print-config", "--set", "optim.lr=0.25")
    assert printed.returncode == 0, printed.stderr
    config = yaml.safe_load(printed.stdout)
    assert config["optim"]["lr"] == 0.25 and config["task"] == "classification"
    assert config["train"]["epochs"] == 1 and config["data"]["name"] == "relational"
    debug = glore("train", w.recipe, "--set", "train.epochs=0", "--debug")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "train.epochs" in debug.stderr
    env = dict(os.environ, GLORE_DEBUG="1")
    from_env = glore("train", w.recipe, "--set", "train.epochs=0", env=env)
    assert from_env.returncode != 0 and "Traceback" in from_env.stderr


@pytest.mark.slow
def test_ctrl_c_during_training_exits_130_with_the_resume_command(w):
    run = w.base / "interrupted"
    argv = [str(GLORE), "train", str(w.recipe), "--output", str(run), "--set", "train.epochs=500"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert (run / "last.pt").exists(), process.communicate()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    hint = next(line for line in err.splitlines() if "interrupted; continue with: " in line)
    command = hint.split("continue with: ", 1)[1].split(" (")[0]
    assert command.startswith("glore train ") and command.endswith(" --resume") and str(run) in command
    state = torch.load(run / "last.pt", weights_only=True)  # the last checkpoint is whole
    assert state["step"] > 0
    assert not list(run.glob(".*tmp*")) and not list(run.glob("*.tmp"))
