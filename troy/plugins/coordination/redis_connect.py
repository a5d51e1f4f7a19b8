"""How the redis coordination plugin connects: password, TLS files, what a refusal means.

The password comes from one of three places, in this order:

1. the URL's user part: ``redis://app:PASSWORD@host/0``;
2. ``?password_file=/path``: the first line of a private file (mode 0600 or
   stricter; troy.model.secrets.read_secret_file refuses one others may read);
3. the environment variable `PASSWORD_ENV` (``TROY_REDIS_PASSWORD``), when the
   URL gives neither.

Giving both 1 and 2 is refused (which one is meant?).  An agent does not read
the file or the variable: its manager hands it the password itself (the
plugin's ``agent_secrets``), in the agent's environment.

TLS (``rediss://``) takes the file options `TLS_FILES`; they are paths on the
host that opens the URL, so an agent on another host needs the same files at
the same paths (troy does not ship them: a client key stays where its owner put it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from troy.model import secrets
from troy.model.errors import CoordinationRefused

#: The environment variable the password is taken from when the URL gives none.
PASSWORD_ENV = "TROY_REDIS_PASSWORD"
#: The query option naming a private file that holds the password.
PASSWORD_FILE = "password_file"
#: rediss:// options that name a file: CA certificates, this client's certificate and key.
TLS_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
CERT_REQS = ("none", "optional", "required")


def resolve_password(
    url_password: str | None,
    password_file: str | None,
    environ: Mapping[str, str],
    url: str,
) -> str | None:
    """The password to connect with (see the module docstring); None for none.

    ``url`` is the redacted URL, for messages.
    """
    if password_file is not None:
        if url_password is not None:
            raise CoordinationRefused(
                f"redis coordination URL {url}: give the password in the URL or in"
                f" {PASSWORD_FILE}=, not both"
            )
        try:
            return secrets.read_secret_file(password_file)
        except ValueError as exc:
            raise CoordinationRefused(
                f"redis coordination URL {url}: {PASSWORD_FILE}: {exc}"
            ) from exc
    if url_password is not None:
        secrets.remember(url_password)
        return url_password
    from_environment = environ.get(PASSWORD_ENV)
    if from_environment:
        secrets.remember(from_environment)
        return from_environment
    return None


def tls_settings(options: dict[str, str], url: str) -> dict[str, Any]:
    """redis-py's TLS settings from the ``ssl_*`` options (popped from ``options``).

    Each file must be readable here; a key without its certificate is refused.
    """
    reqs = options.pop("ssl_cert_reqs", "required")
    if reqs not in CERT_REQS:
        raise CoordinationRefused(
            f"redis coordination URL {url}: ssl_cert_reqs must be none, optional or required"
        )
    settings: dict[str, Any] = {"ssl": True, "ssl_cert_reqs": reqs}
    for name in TLS_FILES:
        path = options.pop(name, None)
        if path is None:
            continue
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise CoordinationRefused(
                f"redis coordination URL {url}: {name}={path} is not a file this user can read"
            )
        settings[name] = path
    if "ssl_keyfile" in settings and "ssl_certfile" not in settings:
        raise CoordinationRefused(
            f"redis coordination URL {url}: ssl_keyfile= needs ssl_certfile= (the certificate"
            f" of that key)"
        )
    return settings


#: (words in redis-py's or the server's message, what they mean), first match wins.
_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("WRONGPASS", "invalid username-password pair"),
        "wrong user name or password (or the user is disabled)",
    ),
    (
        ("NOAUTH", "HELLO must be called", "Authentication required"),
        f"the server needs a user and password: give them in the URL (user:password@),"
        f" in {PASSWORD_FILE}= or in ${PASSWORD_ENV}",
    ),
    (
        ("without any password configured",),
        "the server has no password: connect without one",
    ),
    (
        ("CERTIFICATE_VERIFY_FAILED",),
        "the server's certificate is not trusted: ssl_ca_certs= must name the CA that signed"
        " it, and it must be made for this host name or address",
    ),
    (
        ("UNKNOWN_CA", "unknown ca", "BAD_CERTIFICATE", "bad certificate", "certificate unknown"),
        "the server refused this client certificate (ssl_certfile=): not signed by a CA it trusts",
    ),
    (
        ("certificate required", "CERTIFICATE_REQUIRED", "EOF occurred in violation of protocol"),
        "the server ended the TLS handshake: it may require a client certificate signed by"
        " its CA (ssl_certfile= and ssl_keyfile=)",
    ),
    (
        ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure"),
        "no TLS from the server: is it a plain one (redis://)?",
    ),
)


def explain(exc: BaseException, tls: bool) -> str:
    """What a failed connection most likely means, in words ('' if nothing better is known)."""
    message = str(exc)
    for words, meaning in _HINTS:
        if any(word in message for word in words):
            return meaning
    timeout = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
    if tls and timeout:
        return "no TLS handshake: is it a plain server (redis://), or not Redis at all?"
    if "reset by peer" in message or "closed by server" in message:
        if tls:  # TLS 1.3: the server checks the client's certificate after the handshake
            return (
                "the server hung up after the TLS handshake: it may require a client"
                " certificate signed by its CA (ssl_certfile= and ssl_keyfile=)"
            )
        return "the server hung up: if it serves TLS only, use rediss://"
    return ""
