"""Atomic publication of files and directories: readers see the old state or the new one.

Everything the package writes under a final name (a saved detector, a score CSV, a SavedModel
version, a training stage's weights) is written under a hidden temporary name in the same
directory, flushed, and then renamed into place. Replacing an existing *directory* uses
Linux's ``renameat2(RENAME_EXCHANGE)``, which swaps the two names in one step; where that call
is unavailable, the old directory is moved aside first and :func:`recover_directory` (called by
the loaders) puts it back if the process died between the two renames.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import shutil
import uuid

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps paths ``a`` and ``b``; False where the OS or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, f"renameat2({a}, {b}, RENAME_EXCHANGE): {os.strerror(err)}")


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(path: str) -> None:
    """Flushes every file and directory under ``path`` to disk (before it is renamed into place)."""
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(root)


def temporary_sibling(path: str, kind: str = "tmp") -> str:
    """A hidden name next to ``path`` (``.<name>.<kind>-<random>``) on the same file system."""
    parent, base = os.path.split(os.path.abspath(path))
    return os.path.join(parent, f".{base}.{kind}-{uuid.uuid4().hex[:8]}")


def recover_directory(path: str) -> None:
    """Puts back a directory left aside by a replacement that died between its two renames."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        return
    parent, base = os.path.split(path)
    left = sorted(glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(base)}.old-*")), key=os.path.getmtime)
    if left:
        os.rename(left[-1], path)


def write_directory_atomically(path: str, write_fn) -> str:
    """Calls ``write_fn(tmp_dir)``, then publishes the finished directory as ``path``.

    Readers of ``path`` see the previous directory or the new one, never a half-written one;
    a failure (or a kill) while writing leaves only a hidden ``.<name>.tmp-*`` behind.
    """
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    recover_directory(path)
    tmp = temporary_sibling(path)
    os.makedirs(tmp)
    try:
        write_fn(tmp)
        fsync_tree(tmp)
        if not os.path.exists(path):
            os.rename(tmp, path)
        elif _exchange(tmp, path):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old directory
        else:
            old = temporary_sibling(path, "old")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(os.path.dirname(path))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def write_file_atomically(path: str, write_fn, mode: str = "w", **open_kwargs) -> str:
    """Calls ``write_fn(file_object)`` on a temporary file, then renames it to ``path``."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, mode, **open_kwargs) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(path))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path

