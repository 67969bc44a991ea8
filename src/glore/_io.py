"""File writes that survive crashes and full disks, shared by every part of glore that writes a file a user keeps;
and the lock that keeps one writer per run folder.

A file is first written next to its destination under a temporary name, flushed and fsynced, then renamed over
the destination with ``os.replace`` and the folder fsynced: a crash at any point leaves either the old file or the
new one, never a half-written one. The new file gets the usual permissions (0666 less the umask), not the 0600 of
``tempfile.mkstemp``. A write that fails (no space left, the file-size limit, no permission) raises ``WriteError``,
one line naming the file and the cause, after removing its temporary file; the old file is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "LOCK_NAME",
    "RunFolderLockedError",
    "WriteError",
    "append_text",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "lock_run_folder",
    "remove_stale_temporaries",
]

# Causes of a failed write, in words (errno -> what to tell the user).
_CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (the file-size limit: ulimit -f)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EIO: "input/output error",
}
# The temporary names ``atomic_path`` gives: '.' + the file's name + '.' + mkstemp's 8 characters + '.tmp' ...
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


class WriteError(OSError):
    """A file could not be written. ``str()`` is one line naming the file and the cause; ``errno`` is the
    operating system's; the file that was there before is left as it was.

    Attributes:
        path: the file that was being written.
        cause: the cause in words (``"no space left on the device"`` ...).
    """

    def __init__(self, path: str | os.PathLike[str], error: OSError) -> None:
        self.path = Path(path)
        self.cause = _CAUSES.get(error.errno or 0, error.strerror or str(error))
        super().__init__(error.errno, self.cause)
        kept = "the previous file is left as it was" if self.path.exists() else "nothing was written"
        self.message = f"cannot write {str(self.path)!r}: {self.cause}; {kept}"

    def __str__(self) -> str:
        return self.message


def is_write_failure(error: BaseException) -> bool:
    """Whether ``error`` is a failed write for a reason the user must fix (space, size limit, permission)."""
    return isinstance(error, OSError) and not isinstance(error, WriteError) and error.errno in _CAUSES


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or file system can open a directory
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, previous: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; when the block ends without error, the file written there
    replaces ``path`` atomically (else it is removed and ``path`` is untouched).

    For writers that take a file name (``torch.save``, ``Figure.savefig``, ``safetensors.torch.save_file``).
    The temporary name keeps ``path``'s suffix, so writers that choose a format from it still do.

    Args:
        path: the file to write.
        previous: keep the file ``path`` held as this file (renamed, once the new one is whole on disk), so the
            previous version survives whatever happens to the new one.

    Raises:
        WriteError: no space, the file-size limit, no permission ...; no temporary file is left.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    except OSError as error:
        if is_write_failure(error):
            raise WriteError(path, error) from None
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_write_failure(error):
            raise WriteError(path, error) from None
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a ``Path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path`` as a ``Path``."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def append_text(path: str | os.PathLike[str], text: str) -> None:
    """Append ``text`` (UTF-8) to ``path``: whole or not at all, as far as an error goes (a failed write is cut
    off again, so a table never ends in half a row because the disk filled up).

    Raises:
        WriteError: no space, the file-size limit, no permission ...
    """
    path = Path(path)
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as error:
        if is_write_failure(error):
            raise WriteError(path, error) from None
        raise
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            if is_write_failure(error):
                raise WriteError(path, error) from None
            raise
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files ``atomic_path`` left in ``folder`` (a process killed mid-write); call it only
    while holding the folder's lock, when no write of another process can be under way. Returns what it removed."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        if _TEMPORARY.match(entry.name) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


# -- one writer per run folder ------------------------------------------------------------------------------------

LOCK_NAME = ".glore.lock"


class RunFolderLockedError(OSError):
    """Another live process holds the run folder's lock. ``str()`` is one line naming the holder."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EBUSY, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), to tell it from a later process that
    reuses its number; ``None`` where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    if start is not None:
        now = _start_time(pid)
        return now is None or now == start  # a different start: the number was reused by another process
    return True


def _holder_text(holder: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(holder.get("time", 0))))
    return f"process {holder.get('pid')} on host {holder.get('host')!r} since {since}"


# folder (resolved) -> [lock file, this process's holder record, nesting depth]
_HELD: dict[str, list] = {}


def _acquire(folder: Path) -> tuple[Path, dict]:
    lock = folder / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start": _start_time(os.getpid()), "time": time.time()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if is_write_failure(error):
            raise WriteError(folder, error) from None
        raise
    for _ in range(5):
        # The record is written whole to a temporary file first and then linked to the lock's name, which fails
        # when a lock exists: a lock file is never seen half-written.
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f"{LOCK_NAME}.", suffix=".tmp", dir=folder)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me))
        except OSError as error:
            if is_write_failure(error):
                raise WriteError(lock, error) from None
            raise
        try:
            try:
                os.link(tmp_name, lock)
                return lock, me
            except FileExistsError:
                pass
            except OSError as error:  # no hard links on this file system: create the lock exclusively instead
                if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                try:
                    with open(lock, "x") as f:
                        f.write(json.dumps(me))
                    return lock, me
                except FileExistsError:
                    pass
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)  # the lock's own name (or nothing) remains
        try:
            holder = json.loads(lock.read_text())
            pid = int(holder["pid"])
        except FileNotFoundError:
            continue  # released meanwhile: try again
        except (OSError, ValueError, KeyError, TypeError):
            holder, pid = None, None
        if holder is None:
            stale = True  # not a lock glore wrote whole
        elif holder.get("host") == me["host"]:
            stale = not _alive(pid, holder.get("start"))
        else:
            raise RunFolderLockedError(
                f"output.dir: {str(folder)!r} is in use by another glore train ({_holder_text(holder)}); wait for it "
                f"to finish or choose another --output (if that run is gone with its host, delete {str(lock)!r})"
            )
        if not stale:
            raise RunFolderLockedError(
                f"output.dir: {str(folder)!r} is in use by another glore train ({_holder_text(holder)}); wait for it "
                "to finish or choose another --output"
            )
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()  # a lock left by a process that died: take the folder over
    raise RunFolderLockedError(f"output.dir: cannot take the lock {str(lock)!r}: other processes keep taking it")


@contextlib.contextmanager
def lock_run_folder(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``folder``'s lock (``folder/.glore.lock``) for the block: one writer per run folder.

    The lock records this process's id, host and start; a lock whose process is gone (same host, the process no
    longer running) is stale and taken over. Nested use in one process (``glore train``, then the trainer) holds
    it once. It is released when the block ends, however it ends; a process killed outright leaves a stale lock
    that the next run takes over.

    Args:
        folder: the run folder (created if needed).

    Yields:
        The lock file's path.

    Raises:
        RunFolderLockedError: a live process holds the lock; the message names it.
        WriteError: the folder cannot be written.
    """
    folder = Path(folder)
    key = str(folder.resolve())
    if key in _HELD:
        _HELD[key][2] += 1
        try:
            yield _HELD[key][0]
        finally:
            _HELD[key][2] -= 1
        return
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # folders the lock makes, innermost first
    lock, me = _acquire(folder)
    _HELD[key] = [lock, me, 1]
    try:
        yield lock
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError, ValueError):
            if json.loads(lock.read_text()).get("pid") == me["pid"]:
                lock.unlink()
        for path in created:  # a run refused before it wrote anything leaves no empty folder behind
            try:
                path.rmdir()
            except OSError:
                break
