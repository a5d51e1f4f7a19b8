"""Playing another local user: real processes of ``nobody`` (root starts them).

The ``reachable`` fixture (a directory ``nobody`` can pass through) is in conftest.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="plays another user: needs root")


def as_nobody(*command: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` as the local user ``nobody``."""
    return subprocess.run(
        list(command), input=stdin, capture_output=True, user="nobody", cwd="/", timeout=60
    )


def write_as_nobody(path: Path, content: bytes) -> subprocess.CompletedProcess[bytes]:
    """Try to write ``path`` as ``nobody``; the process, to look at its return code."""
    return as_nobody("/bin/sh", "-c", 'cat > "$1"', "sh", str(path), stdin=content)


def open_to_others(top: Path, writable: Path) -> None:
    """Let anyone pass down from ``top`` and write ``writable``, as an old umask 000 left it."""
    for parent in reversed(writable.relative_to(top).parents):
        (top / parent).chmod(0o711)
    writable.chmod(0o777)
