"""The queues of the file coordination plugin: bundle files renamed between folders.

How ``enqueue``, ``claim``, ``withdraw`` and ``ack`` use ``@pending``,
``@claimed/<claimer>`` and ``@tmp`` is in the file plugin's docstring
(`troy.plugins.coordination.file`).  `QueueFiles` is a part of
`FileCoordination`, in a module of its own: it uses the connection's helpers
(named below for the type checker) and is not used alone.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from troy.model.errors import CoordinationError
from troy.plugins.coordination.base import check_name as _name
from troy.plugins.coordination.file_commit import recover
from troy.plugins.coordination.file_format import (
    BUNDLE,
    CLAIMED,
    NOT_A_FILE,
    PENDING,
    START_DIGITS,
    TMP,
    dumps,
    item_ids,
    join_lines,
    load_claimed,
    log,
    read_own,
    split_lines,
)

#: Where a claim moves a bundle another user put into a queue (or what is not a regular file):
#: never run, kept to look at.
FOREIGN = "@foreign"


class QueueFiles:
    """Queue operations over bundle files; a base class of `FileCoordination`."""

    root: str
    _queues: str
    _dirs: set[str]
    _counter: itertools.count[int]
    _last_ns: int
    #: Per pending folder: bundle names of the last listing not yet tried.
    _listings: dict[str, deque[str]]
    #: Held while a claimed bundle is shortened or acknowledged items are cut from it.
    _claim_lock: threading.Lock

    if TYPE_CHECKING:

        @property
        def writer(self) -> str: ...

        def _mkdir(self, folder: str) -> None: ...

        def _temp_name(self, tmp_dir: str) -> str: ...

        def _publish(self, path: str, data: bytes, tmp_dir: str) -> None: ...

    def _queue_dirs(self, queue: str) -> tuple[str, str, str]:
        base = os.path.join(self._queues, _name(queue))
        return os.path.join(base, PENDING), os.path.join(base, CLAIMED), os.path.join(base, TMP)

    def _pending(self, pending: str) -> list[str]:
        try:
            # listdir, not scandir: only names are needed, and it is twice as fast.
            names = os.listdir(pending)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise CoordinationError(f"cannot list queue {pending}: {exc}") from exc
        return sorted(name for name in names if BUNDLE.fullmatch(name))

    def _bundle(self, queue: str, items: Sequence[Mapping[str, Any]]) -> bytes:
        """The bundle file content of ``items``; CoordinationError for a bad name or item."""
        _name(queue)
        buffer = bytearray()  # built in place: a bulk commit's items are held once
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
                raise CoordinationError(f"queue item without a string 'id': {item!r:.200}")
            plain = item if type(item) is dict else dict(item)
            buffer += dumps(plain, f"item {item['id']} for {queue}")
            buffer += b"\n"
        return bytes(buffer)

    def _bundle_name(self) -> str:
        """A new bundle's name: it sorts after every bundle this connection made before."""
        ns = self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return f"{ns:020d}-{self.writer}-{next(self._counter):06d}.{0:0{START_DIGITS}d}.jsonl"

    def enqueue(self, queue: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Publish the items as one bundle at the end of the queue."""
        pending, _, tmp = self._queue_dirs(queue)
        if not items:
            return
        data = self._bundle(queue, items)
        self._mkdir(pending)
        self._mkdir(tmp)
        self._publish(os.path.join(pending, self._bundle_name()), data, tmp)

    def claim(self, queue: str, claimer: str, max_items: int) -> list[dict[str, Any]]:
        """Take up to ``max_items`` items, oldest first, renaming bundles to the claimer's folder.

        Returns fewer only when, at one moment, no more were pending: a lost race
        makes the claimer look again, since the winner may have put a rest back.
        The bundle names left over from the last listing are tried before the
        folder is listed again (listing a long queue on every claim is what would
        cost most); a single lost race on them means they are stale.
        """
        pending, claimed, tmp = self._queue_dirs(queue)
        mine = os.path.join(claimed, _name(claimer))
        taken: list[dict[str, Any]] = []
        names = self._listings.pop(pending, None)
        fresh = names is None
        if names is None:
            recover(self.root, tmp)
            names = deque(self._pending(pending))
        while True:
            lost = False
            while names and len(taken) < max_items:
                result = self._take(pending, mine, tmp, names.popleft(), max_items - len(taken))
                if result is None:
                    lost = True
                    if not fresh:
                        names.clear()
                    continue
                items, rest = result
                taken.extend(items)
                names.extendleft(reversed(rest))
            if len(taken) >= max_items or (fresh and not lost):
                break
            recover(self.root, tmp)
            names, fresh = deque(self._pending(pending)), True
        if names:
            self._listings[pending] = names
        return taken

    def _take(
        self, pending: str, mine: str, tmp: str, bundle: str, need: int
    ) -> tuple[list[dict[str, Any]], list[str]] | None:
        """Up to ``need`` items of ``bundle`` and the names of its rest, if this claimer wins it."""
        source, target = os.path.join(pending, bundle), os.path.join(mine, bundle)
        self._mkdir(mine)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            if os.path.isdir(mine):
                return None  # another claimer (or a withdraw) won it
            self._dirs.discard(mine)
            return self._take(pending, mine, tmp, bundle, need)
        except OSError as exc:
            raise CoordinationError(f"cannot claim {source}: {exc}") from exc
        with self._claim_lock:  # an ack of this connection does not rewrite it meanwhile
            try:
                data = read_own(target)
            except OSError as exc:
                if exc.errno not in NOT_A_FILE:
                    raise CoordinationError(f"cannot read claimed bundle {target}: {exc}") from exc
                log.warning("set aside %s: not a regular file", target)
                data = None
            if data is None:
                self._set_aside(target, os.path.dirname(pending), bundle)
                return [], []
            lines = split_lines(data)
            rest: list[str] = []
            if len(lines) > need:
                stem, start, _ = bundle.rsplit(".", 2)
                # Put the rest back first: a crash in between duplicates items, never loses them.
                rest = self._put_back(pending, tmp, stem, int(start) + need, lines[need:], need)
                lines = lines[:need]
                try:
                    os.truncate(target, sum(len(line) + 1 for line in lines))
                except OSError as exc:
                    raise CoordinationError(
                        f"cannot shorten claimed bundle {target}: {exc}"
                    ) from exc
        return load_claimed(lines, target), rest

    def _set_aside(self, path: str, queue_dir: str, bundle: str) -> None:
        """Move another user's bundle (or what is not a regular file) out of the queue,
        into its ``@foreign`` folder."""
        aside = os.path.join(queue_dir, FOREIGN)
        self._mkdir(aside)
        try:
            os.rename(path, os.path.join(aside, bundle))
        except OSError as exc:
            raise CoordinationError(f"cannot set aside another user's {path}: {exc}") from exc

    def _put_back(
        self, pending: str, tmp: str, stem: str, start: int, lines: list[bytes], piece: int
    ) -> list[str]:
        """Publish ``lines`` as bundles of piece, piece, 2*piece, 4*piece... items; their names."""
        names, done = [], 0
        while done < len(lines):
            size = max(piece, done)
            names.append(f"{stem}.{start + done:0{START_DIGITS}d}.jsonl")
            self._publish(
                os.path.join(pending, names[-1]), join_lines(lines[done : done + size]), tmp
            )
            done += size
        return names

    def withdraw(self, queue: str, ids: Collection[str]) -> list[str]:
        """Remove the named items that are still pending; return their ids, in queue order."""
        pending, _, tmp = self._queue_dirs(queue)
        wanted = set(ids)
        removed: list[str] = []
        if not wanted:
            return removed
        recover(self.root, tmp)
        for bundle in self._pending(pending):
            path = os.path.join(pending, bundle)
            try:
                data = read_own(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in NOT_A_FILE:  # not a bundle: a claim drops it
                    continue
                raise CoordinationError(f"cannot read bundle {path}: {exc}") from exc
            if data is None:
                continue  # another user's: not an item of ours (a claim sets it aside)
            lines = split_lines(data)
            if not any(ident in wanted for ident in item_ids(lines, path)):
                continue
            private = self._temp_name(tmp)
            try:
                os.rename(path, private)
            except FileNotFoundError:
                continue  # claimed meanwhile
            except OSError as exc:
                raise CoordinationError(f"cannot withdraw from {path}: {exc}") from exc
            try:
                data = read_own(private)  # may differ from what we looked at
            except OSError as exc:
                raise CoordinationError(f"cannot read bundle {private}: {exc}") from exc
            if data is None:
                continue  # swapped for another user's file meanwhile: left in @tmp, unused
            lines = split_lines(data)
            keep = []
            for line, ident in zip(lines, item_ids(lines, private), strict=True):
                if ident in wanted:
                    wanted.discard(ident)
                    removed.append(ident)
                else:
                    keep.append(line)
            if keep:
                self._publish(path, join_lines(keep), tmp)
            with contextlib.suppress(OSError):
                os.unlink(private)
            if not wanted:
                break
        return removed

    def ack(self, queue: str, claimer: str, ids: Collection[str]) -> None:
        """Drop the acknowledged items from the claimer's bundles; delete bundles left empty."""
        _, claimed, tmp = self._queue_dirs(queue)
        mine = os.path.join(claimed, _name(claimer))
        wanted = set(ids)
        if not wanted:
            return
        try:
            names = sorted(name for name in os.listdir(mine) if BUNDLE.fullmatch(name))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise CoordinationError(f"cannot list claimed items {mine}: {exc}") from exc
        for bundle in names:
            path = os.path.join(mine, bundle)
            with self._claim_lock:  # not while a claim of this connection shortens it
                try:
                    data = read_own(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if exc.errno in NOT_A_FILE:  # dropped by the claim that took it
                        continue
                    raise CoordinationError(f"cannot read claimed bundle {path}: {exc}") from exc
                if data is None:
                    continue  # another user's: never rewritten under our name
                lines = split_lines(data)
                idents = item_ids(lines, path)
                keep = [line for line, ident in zip(lines, idents, strict=True)
                        if ident not in wanted]  # fmt: skip
                if len(keep) == len(lines):
                    continue
                if keep:
                    self._mkdir(tmp)
                    self._publish(path, join_lines(keep), tmp)
                else:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        raise CoordinationError(
                            f"cannot delete acknowledged {path}: {exc}"
                        ) from exc
            wanted.difference_update(idents)
            if not wanted:
                break
