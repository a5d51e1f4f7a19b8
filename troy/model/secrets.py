"""Secrets (passwords, keys, tokens): kept out of everything troy prints, records or passes on.

A secret reaches troy in a URL (``redis://app:PASSWORD@host``, a query option
whose name says it is one, e.g. ``?password=`` or ``?curve_secretkey=``), in
the environment, or in a private file (`read_secret_file`).  troy then:

- shows and records URLs only as `redact_url` gives them (``***`` for each
  secret);
- starts agents with `split_url`'s public URL on the command line and the
  secrets in the agent's environment (`AGENT_SECRETS_ENV`, `encode`), which
  the agent removes before it starts any unit (`join_url` puts them back in
  its own memory);
- remembers every secret value it has met (`remember`) so that `scrub` can
  take it out of any text made elsewhere (an exception of a client library,
  a log line) before troy shows it.

Pure functions and one process-wide set; no I/O except `read_secret_file`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Collection, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

#: What a secret is shown as.
REDACTED = "***"
#: The environment variable that carries an agent's secrets (`encode`d); never on a command line.
AGENT_SECRETS_ENV = "TROY_AGENT_SECRETS"
#: The key under which `split_url` returns the password of a URL's user part.
PASSWORD = "password"
#: Query option names that hold a secret whatever the plugin (plugins may declare more).
SECRET_NAMES = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "secret_key",
        "secretkey",
        "aws_secret_access_key",
        "aws_session_token",
        "curve_secretkey",
        # A public key, but it travels with curve_secretkey: so an agent's public URL, without
        # both, is the one its manager recorded (data unit URLs are compared with it).
        "curve_serverkey",
    }
)
#: Environment variables troy reads a secret from (the redis plugin's password).  An agent
#: gets what it needs in `AGENT_SECRETS_ENV` and removes these too before any unit starts
#: (a backend may pass the manager's whole environment on).
SECRET_ENVIRONMENT = frozenset({"TROY_REDIS_PASSWORD"})
_SECRET_SUFFIXES = ("_password", "_secret", "_token", "_secretkey", "_secret_key")
#: Secrets shorter than this are not scrubbed from free text (they would hit ordinary words).
MIN_SCRUBBED = 4

_known: set[str] = set()
_known_lock = threading.Lock()
_USERINFO_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<pw>[^@\s/]*)@")


def is_secret_name(name: str, extra: Collection[str] = ()) -> bool:
    """Whether a query option called ``name`` holds a secret."""
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered in extra or lowered.endswith(_SECRET_SUFFIXES)


def split_url(url: str, secret_options: Collection[str] = ()) -> tuple[str, dict[str, str]]:
    """``url`` without its secrets, and the secrets: ``{"password": ..., option: value}``.

    The user part's password comes back under `PASSWORD`; each query option
    that `is_secret_name` (or is in ``secret_options``) under its own name.
    ``join_url`` of the two gives a URL equivalent to ``url``.
    """
    parts = urlsplit(url)
    found: dict[str, str] = {}
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if colon:
            found[PASSWORD] = unquote(password)
            netloc = f"{user}@{hostport}" if user else hostport
    query: list[tuple[str, str]] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if is_secret_name(name, secret_options):
            found[name] = value
        else:
            query.append((name, value))
    if not found:
        return url, {}
    remember(*found.values())
    public = urlunsplit(
        (parts.scheme, netloc, parts.path, urlencode(query, safe="/:,~"), parts.fragment)
    )
    return public, found


def join_url(public_url: str, secrets: Mapping[str, str]) -> str:
    """`split_url` undone: the secrets put back into ``public_url`` (kept in memory only)."""
    if not secrets:
        return public_url
    parts = urlsplit(public_url)
    netloc = parts.netloc
    password = secrets.get(PASSWORD)
    if password is not None:
        userinfo, at, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0] if at else ""
        netloc = f"{user}:{quote(password, safe='')}@{hostport if at else netloc}"
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name not in secrets
    ]
    query += [(name, value) for name, value in secrets.items() if name != PASSWORD]
    return urlunsplit(
        (parts.scheme, netloc, parts.path, urlencode(query, safe="/:,~"), parts.fragment)
    )


def redact_url(url: str, secret_options: Collection[str] = ()) -> str:
    """``url`` as it may be shown or recorded: each secret replaced by `REDACTED`."""
    try:
        public, found = split_url(url, secret_options)
    except ValueError:  # not a URL urlsplit can read: scrub it as text
        return scrub(url)
    if not found:
        return url
    masked = {name: REDACTED for name in found}
    return join_url(public, masked).replace(quote(REDACTED, safe=""), REDACTED)


def remember(*values: str | None) -> None:
    """Note secret values met in this process, so that `scrub` removes them from any text."""
    with _known_lock:
        _known.update(value for value in values if value and len(value) >= MIN_SCRUBBED)


def scrub(text: str) -> str:
    """``text`` with every remembered secret and every URL's password replaced by `REDACTED`."""
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{REDACTED}@", text)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
        encoded = quote(value, safe="")
        if encoded != value and encoded in text:
            text = text.replace(encoded, REDACTED)
    return text


def encode(secrets: Mapping[str, str]) -> str:
    """Secrets as one environment-safe word (base64 of JSON: letters, digits, ``+/=``)."""
    return base64.b64encode(json.dumps(dict(secrets), sort_keys=True).encode()).decode()


def decode(text: str) -> dict[str, str]:
    """`encode` undone; {} for empty text.  ValueError for anything else."""
    if not text:
        return {}
    try:
        value = json.loads(base64.b64decode(text.encode(), validate=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{AGENT_SECRETS_ENV} is not what troy writes there") from exc
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{AGENT_SECRETS_ENV} is not what troy writes there")
    remember(*value.values())
    return value


def take_agent_secrets() -> dict[str, str]:
    """The secrets the manager gave this agent, out of the environment (so no unit sees them).

    Variables of `SECRET_ENVIRONMENT` it inherited are removed as well.
    """
    for name in SECRET_ENVIRONMENT:
        os.environ.pop(name, None)
    return decode(os.environ.pop(AGENT_SECRETS_ENV, ""))


def read_secret_file(path: str) -> str:
    """The secret in file ``path`` (its first line, stripped); remembered for `scrub`.

    ValueError naming the file if it cannot be read, is empty, or other users
    may read or write it (it must be mode 0600 or stricter, like ssh's keys).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read secret file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"secret file {path} is mode {stat.S_IMODE(mode):04o}: other users may read it;"
            f" make it private (chmod 600 {path})"
        )
    if not text:
        raise ValueError(f"secret file {path} is empty")
    remember(text)
    return text


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs each record's message (install it on troy's handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
