"""The ``irods`` store: data units as collections of data objects in an iRODS zone.

``irods://host[:port]/zone/path`` (port 1247 if not given) keeps unit ``du-1`` as
the collection ``/zone/path/du-1`` and its files as the data objects in it;
sub-collections of a unit are not files of it (``delete`` removes them too).
iRODS has no links, so every data object is a plain file.

The login, in this order (python-irodsclient's ``iRODSSession``):

1. a user and a password, each from the options (``user``, ``password``) or else
   the environment (``IRODS_USER_NAME``, ``IRODS_PASSWORD``): host, port and zone
   come from the URL;
2. otherwise the iCommands environment file (``IRODS_ENVIRONMENT_FILE``, or
   ``~/.irods/irods_environment.json`` as ``iinit`` writes it, with the password
   scrambled in ``~/.irods/.irodsA``), whose host, port and zone must agree with
   the URL, and whose other settings (SSL, PAM, ...) then apply; a password from
   the options or environment is used in place of ``.irodsA``.

A put uploads into a staging collection beside the units and then moves each
object into the unit (a catalog rename), so a put that fails while uploading
leaves the unit as it was. Passwords never appear in messages or ``repr``; the
``password`` option is declared ``secret=True``, so troy keeps it out of records.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

from troy.model.errors import StoreError
from troy.plugins.options import Option, text
from troy.plugins.stores.base import Store, names_to_put, safe_name, safe_unit_id, writing_into

DEFAULT_PORT = 1247
_CHUNK = 1024 * 1024
_CONNECTION_TIMEOUT = 60  # seconds


@dataclass(frozen=True)
class IrodsLocation:
    """Where an ``irods://`` URL points: server, zone and the collection holding the units."""

    host: str
    port: int
    zone: str
    collection: str

    @property
    def url(self) -> str:
        """The normalized ``irods://host:port/zone/path`` URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"irods://{host}:{self.port}{quote(self.collection)}"


def parse_irods_url(url: str) -> IrodsLocation:
    """Server, zone and collection of ``irods://host[:port]/zone/path``; StoreError if malformed.

    The collection is the URL's path (``/zone/path``), the zone its first part.
    Credentials and query parameters are refused (the message never repeats them).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "irods":
        raise StoreError(f"irods store URL {url!r} must start with irods://")
    if parts.username is not None or parts.password is not None:
        raise StoreError(
            "irods store URL must not hold a user or password; use the options user and "
            "password, IRODS_USER_NAME and IRODS_PASSWORD, or iinit's environment file"
        )
    if parts.query:
        raise StoreError(f"irods store URL {url!r}: query parameters are not supported")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise StoreError(f"irods store URL {url!r} has an invalid port") from None
    host = parts.hostname or ""
    if not host:
        raise StoreError(f"irods store URL {url!r} names no host: use irods://host/zone/path")
    path = unquote(parts.path).rstrip("/")
    pieces = path.split("/")[1:]
    if not path.startswith("/") or not pieces or not pieces[0]:
        raise StoreError(f"irods store URL {url!r} names no zone: use irods://host/zone/path")
    if any(piece in ("", ".", "..") for piece in pieces):
        raise StoreError(f"irods store URL {url!r}: the path has an empty, '.' or '..' part")
    return IrodsLocation(host=host, port=port, zone=pieces[0], collection=path)


def environment_file(environ: Mapping[str, str], home: str | None = None) -> Path:
    """The iCommands environment file: ``$IRODS_ENVIRONMENT_FILE`` or ``~/.irods/...json``."""
    named = environ.get("IRODS_ENVIRONMENT_FILE")
    if named:
        return Path(os.path.expanduser(named))
    return Path(home or os.path.expanduser("~")) / ".irods" / "irods_environment.json"


def session_arguments(
    location: IrodsLocation,
    options: Mapping[str, Any],
    environ: Mapping[str, str],
    home: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments for ``iRODSSession`` that log in to ``location`` (see the module).

    StoreError, naming the file or option but never a password, when no login is
    given or the environment file is unreadable or for another server.
    """
    user = str(options.get("user") or environ.get("IRODS_USER_NAME") or "")
    password = str(options.get("password") or environ.get("IRODS_PASSWORD") or "")
    if user and password:
        return {
            "host": location.host,
            "port": location.port,
            "zone": location.zone,
            "user": user,
            "password": password,
        }
    env_file = environment_file(environ, home)
    if not env_file.is_file():
        what = f"no password for iRODS user {user!r}" if user else "no iRODS login"
        raise StoreError(
            f"irods store {location.url}: {what}: give the options user and password, or set "
            f"IRODS_USER_NAME and IRODS_PASSWORD, or run iinit (no {env_file})"
        )
    try:
        settings = json.loads(env_file.read_text())
        if not isinstance(settings, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"irods store: cannot read the environment file {env_file}: {exc}"
        ) from exc
    wanted = {
        "irods_host": location.host,
        "irods_port": location.port,
        "irods_zone_name": location.zone,
    }
    if user:
        wanted["irods_user_name"] = user
    for key, value in wanted.items():
        found = settings.get(key)
        if found is not None and str(found).lower() != str(value).lower():
            raise StoreError(
                f"irods store {location.url}: the environment file {env_file} has "
                f"{key}={found!r}, the store wants {value!r}; give the options user and "
                "password to log in without it"
            )
    arguments: dict[str, Any] = {"irods_env_file": str(env_file)}
    if password:
        arguments["password"] = password
    return arguments


def describe_error(exc: BaseException, location: IrodsLocation) -> str:
    """What went wrong in a python-irodsclient call, in words (never with a password)."""
    name = type(exc).__name__
    detail = str(exc).strip()
    if name in ("CAT_INVALID_AUTHENTICATION", "CAT_INVALID_USER", "PAM_AUTH_PASSWORD_FAILED"):
        return f"{name}: authentication failed (wrong user, password or zone)"
    if name == "NonAnonymousLoginWithoutPassword":
        return f"{name}: no password (run iinit, or give the password option)"
    if name == "NetworkException" or isinstance(exc, OSError):
        return f"cannot reach {location.host}:{location.port} ({detail or name})"
    if name in ("CAT_NO_ACCESS_PERMISSION", "SYS_NO_API_PRIV", "SYS_NO_PATH_PERMISSION"):
        return f"{name}: permission denied"
    if name in ("CollectionDoesNotExist", "DataObjectDoesNotExist", "CAT_UNKNOWN_COLLECTION"):
        return f"{name}: does not exist"
    return f"{name}: {detail}" if detail else name


def _load(module: str) -> Any:
    """An optional dependency's module, as Any (python-irodsclient has no type information)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StoreError(
            f"the irods store needs python-irodsclient (pip install 'troy[irods]'): {exc}"
        ) from exc


def _is_irods_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "irods" or isinstance(exc, OSError)


class IrodsStore(Store):
    """Keeps each data unit as a collection ``<collection>/<unit_id>`` of data objects."""

    name: ClassVar[str] = "irods"
    schemes: ClassVar[tuple[str, ...]] = ("irods",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"glob"})
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {
            "user": Option(
                None, "the iRODS user (else IRODS_USER_NAME, else iinit's file)", text()
            ),
            "password": Option(
                None, "the user's password (else IRODS_PASSWORD)", text(), secret=True
            ),
        }
    )

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self.location = parse_irods_url(url)

    @contextlib.contextmanager
    def _session(self, action: str) -> Iterator[Any]:
        """A logged-in ``iRODSSession``; iRODS errors inside become StoreError naming ``action``."""
        arguments = session_arguments(self.location, self.options, os.environ)
        session_class = _load("irods.session").iRODSSession
        try:
            with session_class(connection_timeout=_CONNECTION_TIMEOUT, **arguments) as session:
                yield session
        except StoreError:
            raise
        except Exception as exc:
            if not _is_irods_error(exc):
                raise
            raise StoreError(
                f"irods store {self.url}: cannot {action}: {describe_error(exc, self.location)}"
            ) from exc

    def _unit_collection(self, unit_id: str) -> str:
        return f"{self.location.collection}/{safe_unit_id(unit_id)}"

    def _objects(self, session: Any, unit_id: str) -> dict[str, Any]:
        """``{name: data object}`` of the unit; StoreError if the unit does not exist."""
        missing = _load("irods.exception").CollectionDoesNotExist
        path = self._unit_collection(unit_id)
        try:
            collection = session.collections.get(path)
        except missing:
            raise StoreError(f"irods store {self.url}: no data unit {unit_id!r} ({path})") from None
        return {obj.name: obj for obj in collection.data_objects}

    def put(self, unit_id: str, paths: Sequence[str]) -> list[str]:
        """Copy local files into data unit ``unit_id`` (created if new); return their names."""
        unit = self._unit_collection(unit_id)
        names = names_to_put(unit_id, paths)
        staging = f"{self.location.collection}/.troy-put-{uuid.uuid4().hex}"
        with self._session(f"put into data unit {unit_id!r}") as session:
            session.collections.create(staging)
            try:
                for path, name in zip(paths, names, strict=True):
                    session.data_objects.put(os.fspath(path), f"{staging}/{name}")
                session.collections.create(unit)
                for name in names:
                    if session.collections.exists(f"{unit}/{name}"):
                        raise StoreError(
                            f"irods store {self.url}: cannot put {name!r} into data unit "
                            f"{unit_id!r}: {unit}/{name} is a collection"
                        )
                    if session.data_objects.exists(f"{unit}/{name}"):
                        session.data_objects.unlink(f"{unit}/{name}", force=True)
                    session.data_objects.move(f"{staging}/{name}", f"{unit}/{name}")
            finally:
                with contextlib.suppress(Exception):
                    session.collections.remove(staging, recurse=True, force=True)
        return names

    def get(self, unit_id: str, destination: str, patterns: Sequence[str] = ("*",)) -> list[str]:
        """Copy the unit's files whose names match any glob into a local directory.

        Returns the names copied, sorted; StoreError if the unit does not exist or a
        chosen name is not a safe file name (nothing is written then).
        """
        if isinstance(patterns, str):
            patterns = (patterns,)
        with self._session(f"get data unit {unit_id!r}") as session:
            objects = self._objects(session, unit_id)
            chosen = sorted(
                name for name in objects if any(fnmatch.fnmatchcase(name, p) for p in patterns)
            )
            for name in chosen:
                safe_name(name)
            try:
                os.makedirs(destination, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the destination {destination}: {exc.strerror or exc}"
                ) from exc
            for name in chosen:
                with (
                    session.data_objects.open(objects[name].path, "r") as source,
                    writing_into(destination, name) as out,
                ):
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
        return chosen

    def list(self, unit_id: str) -> list[str]:
        """Names of the unit's files, sorted; StoreError if the unit does not exist."""
        with self._session(f"list data unit {unit_id!r}") as session:
            return sorted(self._objects(session, unit_id))

    def delete(self, unit_id: str) -> None:
        """Remove the unit and its files; deleting a missing unit is not an error."""
        path = self._unit_collection(unit_id)
        with self._session(f"delete data unit {unit_id!r}") as session:
            if session.collections.exists(path):
                session.collections.remove(path, recurse=True, force=True)

    def size(self, unit_id: str) -> int:
        """Total bytes of the unit's files; StoreError if the unit does not exist."""
        with self._session(f"size data unit {unit_id!r}") as session:
            return sum(int(obj.size) for obj in self._objects(session, unit_id).values())

    def unit_url(self, unit_id: str) -> str:
        """``irods://host:port/zone/path/unit_id``."""
        return f"{self.location.url}/{quote(safe_unit_id(unit_id))}"
