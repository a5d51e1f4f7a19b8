"""Where troy keeps things by default, and how it names them."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def troy_home() -> Path:
    """``$TROY_HOME``, else ``~/.troy``."""
    return Path(os.environ.get("TROY_HOME") or Path.home() / ".troy").expanduser().absolute()


def default_coordination_url() -> str:
    """``$TROY_COORDINATION``, else a file store in the troy home."""
    url = os.environ.get("TROY_COORDINATION")
    if url:
        return url
    return (troy_home() / "coordination").as_uri()


def default_pilot_directory(pilot_id: str) -> str:
    """Where a pilot makes its unit sandboxes when its description names no directory."""
    return str(troy_home() / "pilots" / pilot_id)


def heartbeat_timeout() -> float:
    """Seconds without a heartbeat after which a pilot's agent counts as lost.

    ``$TROY_HEARTBEAT_TIMEOUT``, default 20; agents beat six times as often.
    """
    try:
        return max(0.5, float(os.environ.get("TROY_HEARTBEAT_TIMEOUT") or 20.0))
    except ValueError:
        return 20.0


def new_id(prefix: str) -> str:
    """A fresh id such as ``wus-3f9c0a1b2c4d``."""
    return f"{prefix}-{secrets.token_hex(6)}"
