"""Waiting on the file plugin's folders with Linux inotify: an idle agent sleeps until written.

`FileCoordination.wait_for_work` (contract 1.4) watches the queue's pending
folder (a bundle is renamed into it) and the control stream's folder (a
writer's file grows, a compaction adds files).  Only where every writer is on
this host does inotify see every write: on a local filesystem.  On NFS, Lustre
and the like (writers on other hosts), or without inotify, `Watcher.open`
gives None and the agent polls instead, backing off.

Watches stay once added, so what is written between the caller's claim and its
next wait is queued in the inotify descriptor and ends that wait at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select

#: Filesystems whose every writer is on this host (inotify sees all writes).
LOCAL_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "f2fs", "ramfs"}
)
_IN_MODIFY, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x80, 0x100
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_MASK = _IN_MODIFY | _IN_MOVED_TO | _IN_CREATE


def filesystem_of(path: str) -> str:
    """The type of the filesystem ``path`` is on (from /proc/self/mounts), "" if unknown."""
    path = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        return ""
    return kind


class Watcher:
    """One inotify descriptor and the folders it watches; used by one thread."""

    def __init__(self, libc: ctypes.CDLL, descriptor: int) -> None:
        self._libc = libc
        self._fd = descriptor
        self._watched: set[str] = set()

    @classmethod
    def open(cls, root: str) -> Watcher | None:
        """A watcher for folders below ``root``, or None where it would miss writes."""
        if filesystem_of(root) not in LOCAL_FILESYSTEMS:
            return None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            descriptor = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        except (OSError, AttributeError):
            return None
        return cls(libc, descriptor) if descriptor >= 0 else None

    def wait(self, folders: list[str], timeout: float) -> bool:
        """Block until a write in ``folders`` or ``timeout`` s; False if one cannot be watched.

        A folder watched for the first time returns at once: it may have changed
        before the watch began.
        """
        new = False
        for folder in folders:
            if folder not in self._watched:
                if self._libc.inotify_add_watch(self._fd, os.fsencode(folder), _MASK) < 0:
                    return False
                self._watched.add(folder)
                new = True
        if new:
            return True
        readable, _, _ = select.select([self._fd], [], [], max(0.0, timeout))
        if readable:
            try:
                while os.read(self._fd, 65536):  # drained: the caller looks now
                    pass
            except BlockingIOError:
                pass
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
