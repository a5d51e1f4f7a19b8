"""What a ``tcp://`` coordination URL says: the broker's endpoint, its journal, retries, CURVE.

See the zmq plugin's docstring for the options; pure parsing, no I/O.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from troy.model import secrets as secret_values
from troy.model.config import troy_home
from troy.model.errors import CoordinationError
from troy.plugins.coordination import zmq_curve as curve
from troy.plugins.coordination.base import DEFAULT_RETRY

#: The URL's query options (see the module docstring).
_OPTIONS = ("journal", "retry", "curve", "curve_keys", curve.SERVER_KEY, curve.SECRET_KEY)


@dataclass(frozen=True)
class ZmqAddress:
    """What a ``tcp://`` coordination URL says: the broker, its journal, retries, CURVE keys."""

    endpoint: str
    journal: str
    retry: float
    curve: bool = True
    key_file: str = ""
    serverkey: bytes | None = None
    secretkey: bytes | None = field(default=None, repr=False)


def parse_url(url: str) -> ZmqAddress:
    """The address in a ``tcp://host:port[?options]`` URL, or CoordinationError (URL redacted)."""
    shown = secret_values.redact_url(url, {curve.SECRET_KEY})
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise CoordinationError(f"zmq coordination URL {shown}: {exc}") from exc
    if parts.scheme.lower() != "tcp" or not host or not port:
        raise CoordinationError(f"not a zmq coordination URL (tcp://host:port): {shown}")
    if parts.path not in ("", "/") or parts.fragment or parts.username or parts.password:
        raise CoordinationError(f"zmq coordination URL {shown} takes only host, port and query")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown or any(len(values) > 1 for values in query.values()):
        raise CoordinationError(
            f"zmq coordination URL {shown}: query takes {'=, '.join(_OPTIONS)}= once each"
        )
    try:
        retry = float(query["retry"][0]) if "retry" in query else DEFAULT_RETRY
    except ValueError:
        retry = -1.0
    if not 0 <= retry < float("inf"):
        raise CoordinationError(f"zmq coordination URL {shown}: retry= must be seconds >= 0")
    if "journal" in query:
        journal = os.path.abspath(os.path.expanduser(unquote(query["journal"][0])))
    else:
        journal = str(troy_home() / "zmq" / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{host}_{port}"))
    switch = query.get("curve", ["on"])[0].lower()
    if switch not in ("on", "off"):
        raise CoordinationError(f"zmq coordination URL {shown}: curve= is on or off")
    if "curve_keys" in query:
        key_file = os.path.abspath(os.path.expanduser(query["curve_keys"][0]))
    else:
        key_file = os.path.join(journal, curve.KEY_FILE)
    keys: dict[str, bytes] = {}
    for name in (curve.SERVER_KEY, curve.SECRET_KEY):
        if name in query:
            try:
                keys[name] = curve.z85_key(query[name][0])
            except ValueError as exc:
                raise CoordinationError(f"zmq coordination URL {shown}: {name}=: {exc}") from None
    bracketed = f"[{host}]" if ":" in host else host
    return ZmqAddress(
        f"tcp://{bracketed}:{port}",
        journal,
        retry,
        switch == "on",
        key_file,
        keys.get(curve.SERVER_KEY),
        keys.get(curve.SECRET_KEY),
    )
