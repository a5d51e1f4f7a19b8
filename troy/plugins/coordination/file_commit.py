"""The file plugin's all-or-nothing commit: staged bundles, an intent, and roll-forward.

The steps, and why a crash between any two of them records all or nothing,
are in the file plugin's docstring (`troy.plugins.coordination.file`); the
plugin's ``commit`` writes; this module finishes what a committer left.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from troy.model.errors import CoordinationError
from troy.model.private import private_open
from troy.plugins.coordination.base import check_name
from troy.plugins.coordination.file_format import MARKER, STAGED, loads, read_own, write_all


def write_new(path: str, data: bytes) -> None:
    """Write a file that must not exist yet."""
    try:
        fd = private_open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise CoordinationError(f"cannot write {path}: {exc}") from exc


def roll_forward(intent_path: str, staged: list[tuple[str, str]]) -> None:
    """Move a committed intent's bundles (temp path, final path) into their queues."""
    for temp, final in staged:
        try:
            os.rename(temp, final)
        except FileNotFoundError:
            pass  # another connection finished this commit
        except OSError as exc:
            raise CoordinationError(f"cannot enqueue committed bundle {final}: {exc}") from exc
    with contextlib.suppress(FileNotFoundError):
        os.unlink(intent_path)


def recover(root: str, tmp: str) -> None:
    """Finish the commits whose bundles wait in ``tmp`` and whose stream line has landed.

    ``root`` is the coordination directory: intents are in ``root/commits``.
    """
    try:
        names = [n for n in os.listdir(tmp) if n.startswith(STAGED)]
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise CoordinationError(f"cannot list {tmp}: {exc}") from exc
    for cid in {name[len(STAGED) :].split(".", 1)[0] for name in names}:
        intent_path = os.path.join(root, "commits", cid + ".json")
        try:
            data = read_own(intent_path)
        except FileNotFoundError:
            continue  # not committed yet (or given up: then its bundles are never used)
        except OSError as exc:
            raise CoordinationError(f"cannot read commit intent {intent_path}: {exc}") from exc
        if data is None:
            continue  # another user's: it would name files for us to move
        intent = loads(data, intent_path)
        if intent["file"] is not None and not landed(root, intent):
            continue
        staged = [
            (os.path.join(root, temp), os.path.join(root, final))
            for temp, final in intent["bundles"]
        ]
        roll_forward(intent_path, staged)


def landed(root: str, intent: dict[str, Any]) -> bool:
    """True if the intent's stream line is complete in its writer's file."""
    folder = os.path.join(root, "streams", check_name(intent["stream"]))
    path = os.path.join(folder, intent["file"])
    offset = int(intent["offset"])
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            while chunk := file.read(1 << 20):
                if b"\n" in chunk:
                    return True
    except FileNotFoundError:
        # Compacted away: the stream was finished, so the line had landed.
        return os.path.exists(os.path.join(folder, MARKER))
    except OSError as exc:
        raise CoordinationError(f"cannot read stream file {path}: {exc}") from exc
    return False
