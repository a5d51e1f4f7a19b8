"""Files and directories that only their owner can read or write, whatever the umask.

Everything troy makes that holds state (``$TROY_HOME``, the ``file``
coordination, run records, pilot directories, agent logs) is made with these:
directories 0700, files 0600.  The mode is given to ``mkdir``/``open`` (so the
name never exists with more rights) and set again afterwards (so a umask that
takes the owner's own bits away does not leave troy unable to use what it
made).  Nothing here touches the process-wide umask, which threads share.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from pathlib import Path

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
#: Group and other write: whoever has them can put files troy would trust.
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH

StrPath = str | os.PathLike[str]


def private_mkdir(path: StrPath, parents: bool = True) -> None:
    """Make ``path`` (and, with ``parents``, each missing parent) a 0700 directory.

    Directories that exist already are left as they are: only what this call
    makes is made private.  OSError as ``os.mkdir`` raises it.
    """
    target = Path(path)
    missing: list[Path] = []
    probe = target
    while not probe.is_dir():
        missing.append(probe)
        if not parents or probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made by someone else meanwhile: theirs, not ours to change
        os.chmod(directory, DIRECTORY_MODE)


def private_open(path: StrPath, flags: int) -> int:
    """``os.open(path, flags)`` that makes a missing file 0600; the descriptor.

    ``flags`` should hold ``O_CREAT`` (and ``O_EXCL`` for a file that must be
    new); a file that existed keeps its mode.
    """
    created = bool(flags & os.O_EXCL)
    descriptor = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    if created:
        try:
            os.fchmod(descriptor, FILE_MODE)
        except OSError:
            os.close(descriptor)
            raise
    return descriptor


def private_write(path: StrPath, data: bytes) -> None:
    """Make ``path`` a 0600 file holding ``data``, atomically (a temp file renamed over it)."""
    temp = f"{os.fspath(path)}.{os.getpid()}-{threading.get_ident()}.tmp"
    descriptor = private_open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def unsafe_directory(path: StrPath) -> str | None:
    """Why another local user could write into directory ``path``, or None if nobody can.

    It must be owned by this process's user and not writable by group or
    others.  A missing path is not unsafe (None): the caller decides.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    uid = os.geteuid()
    if status.st_uid != uid:
        return (
            f"{os.fspath(path)} is owned by uid {status.st_uid}, not by this process's uid {uid}"
            f" (chown {uid} {os.fspath(path)})"
        )
    if status.st_mode & OTHERS_WRITE:
        return (
            f"{os.fspath(path)} can be written by other users"
            f" (mode {stat.S_IMODE(status.st_mode):04o}; chmod go-w {os.fspath(path)})"
        )
    return None
