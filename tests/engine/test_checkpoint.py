"""Checkpoints: atomic writes, weights_only loading, RNG states, rebuilding the network."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from support import failing_open

from glore._io import (
    LOCK_NAME,
    RunFolderLockedError,
    WriteError,
    append_text,
    lock_run_folder,
    remove_stale_temporaries,
)
from glore.engine import checkpoint as ckpt
from glore.engine.checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    load_model,
    restore_rng_state,
    save_checkpoint,
)


def test_roundtrip_weights_only(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3, "metrics": {"top1": 0.5}, "rng": capture_rng_state()}
    path = save_checkpoint(state, tmp_path / "sub" / "last.pt")
    loaded = load_checkpoint(path)  # weights_only=True inside
    assert torch.equal(loaded["model"]["w"], torch.arange(4.0)) and loaded["epoch"] == 3
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_crash_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    DyingFile = failing_open(lambda data: len(data) // 2, lambda: KeyboardInterrupt("killed mid-write"))

    monkeypatch.setattr(ckpt, "open", DyingFile, raising=False)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_crash_before_rename_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def no_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(ckpt.os, "replace", no_replace)
    with pytest.raises(OSError, match="disk gone"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)


class Payload:
    """An arbitrary class: unpickling it could run code, so weights_only loading must refuse it."""


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Payload()}, path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)


def test_rng_state_roundtrip(tmp_path):
    save_checkpoint({"rng": capture_rng_state()}, tmp_path / "r.pt")
    first = (random.random(), float(np.random.rand()), float(torch.rand(())))
    restore_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    again = (random.random(), float(np.random.rand()), float(torch.rand(())))
    assert first == again


def test_load_model_rebuilds_network(tmp_path):
    from glore.models import create_model

    net = create_model("resnet_small", num_classes=3, glore="res4:1", widths=[8, 8, 16, 16], stem_width=8)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()
    save_checkpoint({"model": net.state_dict(), "model_config": net.model_config}, tmp_path / "m.pt")
    rebuilt = load_model(tmp_path / "m.pt")
    assert not rebuilt.training
    x = torch.randn(2, 3, 32, 32)
    net.eval()
    assert torch.equal(rebuilt(x), net(x))
    save_checkpoint({"model": net.state_dict()}, tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="model_config"):
        load_model(tmp_path / "bare.pt")


def _flip(path: Path, offset: int, count: int = 64) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, offset + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_tensor_bytes_are_a_corrupt_checkpoint(tmp_path):
    weights = torch.arange(4096, dtype=torch.float32)
    path = save_checkpoint({"model": {"w": weights}, "epoch": 3}, tmp_path / "last.pt")
    assert load_checkpoint(path)["checksum"].startswith("sha256:")
    # Flip 64 bytes in the middle of the tensor's data record: the zip and the pickle still read.
    raw = path.read_bytes()
    start = raw.index(weights[1000:1004].numpy().tobytes())
    _flip(path, start)
    state = torch.load(path, weights_only=True)  # torch itself reads it without a word ...
    assert not torch.equal(state["model"]["w"], weights)
    with pytest.raises(CheckpointError, match=r"last.pt' is corrupt: its contents do not match the checksum"):
        load_checkpoint(path)  # ... glore does not


def test_checksum_covers_plain_values_and_dtypes():
    base = {"model": {"w": torch.zeros(2)}, "epoch": 3, "metrics": {"top1": 0.5}}
    digest = ckpt.checkpoint_checksum(base)
    for changed in (
        {**base, "epoch": 4},
        {**base, "metrics": {"top1": 0.25}},
        {**base, "model": {"w": torch.zeros(2, dtype=torch.float64)}},
        {**base, "model": {"w": torch.zeros(1, 2)}},
        {**base, "model": {"v": torch.zeros(2)}},
    ):
        assert ckpt.checkpoint_checksum(changed) != digest
    assert ckpt.checkpoint_checksum({**base, "checksum": "x"}) == digest


def test_previous_checkpoint_is_kept(tmp_path):
    path, previous = tmp_path / "last.pt", tmp_path / "previous.pt"
    save_checkpoint({"epoch": 1}, path, previous=previous)
    assert not previous.exists()
    save_checkpoint({"epoch": 2}, path, previous=previous)
    save_checkpoint({"epoch": 3}, path, previous=previous)
    assert load_checkpoint(path)["epoch"] == 3 and load_checkpoint(previous)["epoch"] == 2


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EFBIG, "file too large (the file-size limit: ulimit -f)"),
        (errno.EDQUOT, "disk quota exceeded"),
    ],
)
def test_a_failed_write_names_the_file_and_the_cause(tmp_path, monkeypatch, code, cause):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(1000)}, path)
    before = path.read_bytes()

    FullDisk = failing_open(lambda data: 100, lambda: OSError(code, os.strerror(code)))

    monkeypatch.setattr(ckpt, "open", FullDisk, raising=False)
    with pytest.raises(WriteError) as caught:
        save_checkpoint({"epoch": 2, "w": torch.zeros(1000)}, path, previous=tmp_path / "previous.pt")
    message = str(caught.value)
    assert message == f"cannot write {str(path)!r}: {cause}; the previous file is left as it was"
    assert "\n" not in message and caught.value.errno == code
    assert path.read_bytes() == before  # intact, not moved to previous.pt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left


def test_permission_denied_names_the_file(tmp_path, monkeypatch):
    import glore._io as io_module

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(io_module.tempfile, "mkstemp", refused)
    with pytest.raises(WriteError, match=r"cannot write '.*new.pt': permission denied; nothing was written"):
        save_checkpoint({"epoch": 1}, tmp_path / "new.pt")


FILE_SIZE_LIMIT = """
import resource, signal, sys, torch
from glore.engine.checkpoint import save_checkpoint
from glore._io import WriteError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as glore's command does: the write fails instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
save_checkpoint({"w": torch.zeros(10)}, sys.argv[1])
try:
    save_checkpoint({"w": torch.zeros(100_000)}, sys.argv[1])
except WriteError as error:
    print(error)
"""


def test_a_real_file_size_limit(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "last.pt"
    result = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMIT, str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"cannot write {str(path)!r}: file too large (the file-size limit: ulimit -f); "
        "the previous file is left as it was"
    )
    assert load_checkpoint(path)["w"].shape == (10,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_append_is_whole_or_nothing(tmp_path, monkeypatch):
    import glore._io as io_module

    table = tmp_path / "metrics.csv"
    append_text(table, "a,b\n1,2\n")
    real_write = os.write

    def short_then_full(fd, data):
        real_write(fd, bytes(data)[:2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_module.os, "write", short_then_full)
    with pytest.raises(WriteError, match="metrics.csv': no space left"):
        append_text(table, "3,4\n")
    monkeypatch.undo()
    assert table.read_text() == "a,b\n1,2\n"  # the half row was cut off again


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".last.pt.ab12cd_9.tmp.pt").write_bytes(b"half")
    (tmp_path / ".metrics.csv.zz99yy00.tmp.csv").write_text("x")
    (tmp_path / "last.pt").write_bytes(b"keep")
    (tmp_path / ".hidden").write_text("keep")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".last.pt.ab12cd_9.tmp.pt", ".metrics.csv.zz99yy00.tmp.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "last.pt"]


HOLD_LOCK = """
import sys, time
from glore._io import lock_run_folder
with lock_run_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_one_writer_per_run_folder(tmp_path):
    import json
    import signal
    import socket
    import subprocess
    import sys

    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderLockedError) as caught, lock_run_folder(run):
            pass
        message = str(caught.value)
        assert f"is in use by another glore train (process {holder.pid} on host {socket.gethostname()!r}" in message
        assert "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)  # killed outright: the lock stays behind, stale
        holder.wait()
    assert json.loads((run / LOCK_NAME).read_text())["pid"] == holder.pid
    with lock_run_folder(run) as lock:  # the dead process's lock is taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with lock_run_folder(run):  # nested in one process: held once
            pass
        assert lock.exists()
    assert not (run / LOCK_NAME).exists()  # released, whatever way the block ends
    with pytest.raises(ZeroDivisionError), lock_run_folder(run):
        raise ZeroDivisionError
    assert sorted(p.name for p in run.iterdir()) == []


def test_a_lock_of_another_host_is_refused_naming_it(tmp_path):
    import json

    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "node17", "start": None, "time": 0}))
    with pytest.raises(RunFolderLockedError, match=r"process 1 on host 'node17' since 1970-01-01 .*delete"):
        with lock_run_folder(tmp_path):
            pass
    # the same pid on this host, but a process that started at another time: the number was reused
    import socket

    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": socket.gethostname(), "start": "1", "time": 0}))
    with lock_run_folder(tmp_path):
        pass
