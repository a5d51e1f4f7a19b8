"""Pilot-Data and data units in coordination: their records, events and how to read them.

Shared by the manager side (PilotDataService, the unit manager's data-aware
placement) and the agent (staging), so both read data units the same way.
It sits on the plugin contracts (coordination, stores, the registry) and
below both sides.

Records
    ``service/<id>``    {"id", "kind": "pilotdata", "created"}
    ``pilotdata/<id>``  {"id", "service", "url", "description", "created",
                        "withheld"?}: the description without the store's
                        secret options (``Option(secret=True)``: S3 keys, an
                        iRODS password); ``withheld`` names those left out
    ``dataunit/<id>``   {"id", "service", "description", "created"}
Streams
    ``service/<id>``    {"ev": "pd", "id"} for each Pilot-Data created
    ``dataunit/<id>``   {"ev": "replica", "pd", "ts"}: the unit has a copy in that
                        Pilot-Data (the first is where it was made);
                        {"ev": "files", "pd", "files": {name: bytes}, "ts"}: files
                        put into that copy; {"ev": "state", "s", "ts", "detail"?}
A data unit's URL is ``<coordination URL>#<data unit id>``, with the public
coordination URL (no password): it resolves in any process that can open that
coordination (`connect` puts back the secrets of a URL this process opened).

Secrets.  A store's secret options are kept in the memory of the process that
made the Pilot-Data (`keep_store_secrets`), never in a record; `open_store`
puts them back.  An agent gets them in its environment with the coordination's
secrets (`agent_store_secrets`, `take_store_secrets`).  Elsewhere the store
uses its plugin's standard chain (boto3's environment, ~/.aws, profile; the
iRODS environment and ~/.irods).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from troy.model import secrets
from troy.model.data_description import SECRET_FIELDS, PilotDataDescription
from troy.model.errors import NoSuchObject, StoreError
from troy.model.states import State
from troy.plugins import registry
from troy.plugins.coordination.base import Coordination
from troy.plugins.stores.base import Store

log = logging.getLogger(__name__)


def pilot_data_key(pilot_data_id: str) -> str:
    return f"pilotdata/{pilot_data_id}"


def data_unit_key(unit_id: str) -> str:
    return f"dataunit/{unit_id}"


def data_unit_url(coordination_url: str, unit_id: str) -> str:
    """The URL that names a data unit from anywhere the coordination can be opened.

    Its coordination part is public (`troy.model.secrets.split_url`): the URL
    goes into unit descriptions, records and messages.
    """
    return f"{secrets.split_url(coordination_url)[0]}#{unit_id}"


def is_this_coordination(url: str | None, coordination: Coordination) -> bool:
    """Whether a data unit URL's coordination part (None: a bare id) names ``coordination``."""
    return url is None or url in (coordination.url, coordination.public_url())


def split_data_unit_url(url: str) -> tuple[str | None, str]:
    """(coordination URL or None for a bare id, data unit id) of a data unit URL."""
    coordination, hash_sign, unit_id = url.rpartition("#")
    if not hash_sign:
        return None, url
    return coordination or None, unit_id


def data_urls(value: Any) -> tuple[str, ...]:
    """The data unit URLs of an input_data/output_data list (URLs or {URL: [globs]})."""
    urls: list[str] = []
    for item in value or ():
        urls.extend(str(url) for url in item) if isinstance(item, dict) else urls.append(str(item))
    return tuple(urls)


def event(kind: str, **fields: Any) -> dict[str, Any]:
    """A data-unit stream event; fields that are None are left out."""
    return {"ev": kind, "ts": time.time(), **{k: v for k, v in fields.items() if v is not None}}


@dataclass
class DataUnitView:
    """What a data unit's record and stream say now."""

    id: str
    record: dict[str, Any]
    state: State = State.New
    detail: str = ""
    #: Pilot-Data ids holding a copy, in the order the copies were made.
    replicas: list[str] = field(default_factory=list)
    #: name -> bytes, over all copies (a name put later replaces the earlier size).
    files: dict[str, int] = field(default_factory=dict)
    #: Where reading the stream stopped (pass it back to read only what is new).
    cursor: Any = None

    @property
    def size(self) -> int:
        return sum(self.files.values())

    def apply(self, events: list[dict[str, Any]]) -> None:
        for item in events:
            kind = item.get("ev")
            if kind == "replica" and item["pd"] not in self.replicas:
                self.replicas.append(item["pd"])
            elif kind == "files":
                self.files.update(item.get("files") or {})
            elif kind == "state":
                self.state = State(item["s"])
                self.detail = item.get("detail") or ""


def read_data_unit(
    coordination: Coordination, unit_id: str, view: DataUnitView | None = None
) -> DataUnitView:
    """The data unit as recorded (``view``: bring an earlier view up to date)."""
    if view is None:
        record = coordination.get_record(data_unit_key(unit_id))
        if record is None:
            raise NoSuchObject(f"no data unit '{unit_id}' in {coordination.public_url()}")
        view = DataUnitView(unit_id, record)
    events, view.cursor = coordination.read(data_unit_key(unit_id), view.cursor)
    view.apply(events)
    return view


def read_pilot_data(coordination: Coordination, pilot_data_id: str) -> dict[str, Any]:
    record = coordination.get_record(pilot_data_key(pilot_data_id))
    if record is None:
        raise NoSuchObject(f"no Pilot-Data '{pilot_data_id}' in {coordination.public_url()}")
    return record


#: The prefix of a store secret's name among an agent's secrets: ``store:<Pilot-Data id>:<option>``.
STORE_SECRET = "store:"
_store_secrets: dict[str, dict[str, str]] = {}
_store_secrets_lock = threading.Lock()


def secret_store_options(url: str) -> frozenset[str]:
    """The options of ``url``'s store plugin that hold secrets (never recorded nor shown)."""
    plugin = registry.for_url("store", url)
    declared = {name for name, spec in plugin.option_specs.items() if spec.secret}
    return frozenset(declared | SECRET_FIELDS)


def split_description(
    description: PilotDataDescription,
) -> tuple[dict[str, Any], dict[str, str]]:
    """A Pilot-Data description as it may be recorded, and the secret options taken out."""
    hidden = secret_store_options(str(description.service_url))
    public: dict[str, Any] = {}
    found: dict[str, str] = {}
    for name, value in description.as_dict().items():
        if name in hidden and value is not None:
            found[name] = str(value)
        else:
            public[name] = value
    secrets.remember(*found.values())
    return public, found


def keep_store_secrets(pilot_data_id: str, values: Mapping[str, str]) -> None:
    """Remember a Pilot-Data's secret options in this process (for `open_store` and agents)."""
    if values:
        secrets.remember(*values.values())
        with _store_secrets_lock:
            _store_secrets[pilot_data_id] = dict(values)


def agent_store_secrets() -> dict[str, str]:
    """Every store secret this process knows, named for an agent's environment."""
    with _store_secrets_lock:
        return {
            f"{STORE_SECRET}{pilot_data_id}:{name}": value
            for pilot_data_id, values in _store_secrets.items()
            for name, value in values.items()
        }


def take_store_secrets(given: Mapping[str, str]) -> dict[str, str]:
    """Keep the store secrets among an agent's ``given`` secrets; the rest (the coordination's)."""
    rest: dict[str, str] = {}
    for name, value in given.items():
        if not name.startswith(STORE_SECRET):
            rest[name] = value
            continue
        pilot_data_id, _, option = name[len(STORE_SECRET) :].partition(":")
        with _store_secrets_lock:
            _store_secrets.setdefault(pilot_data_id, {})[option] = value
        secrets.remember(value)
    return rest


def open_store(record: dict[str, Any]) -> Store:
    """The store plugin of a Pilot-Data record, opened with its options.

    Secret options withheld from the record are put back if this process knows
    them (`keep_store_secrets`); else the store uses its plugin's standard chain.
    """
    with _store_secrets_lock:
        kept = dict(_store_secrets.get(str(record.get("id")), {}))
    missing = sorted(set(record.get("withheld") or ()) - set(kept))
    if missing:
        log.warning(
            "Pilot-Data %s was made with %s, which troy does not record and this process was"
            " not given (an agent is given them only by the process that made the Pilot-Data):"
            " the store uses its own credential chain",
            record.get("id"),
            " and ".join(missing),
        )
    description = PilotDataDescription(
        {**(record.get("description") or {"service_url": record["url"]}), **kept}
    )
    plugin = registry.for_url("store", record["url"])
    try:
        store: Store = plugin(record["url"], description.store_options())
    except StoreError:
        raise
    except Exception as exc:  # a plugin's own error on open: name the store, hide secrets
        raise StoreError(f"cannot open store {record['url']}: {type(exc).__name__}") from exc
    return store


def labels(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(datacenter, machine) affinity labels of a Pilot-Data record."""
    description = record.get("description") or {}
    return (
        description.get("affinity_datacenter_label"),
        description.get("affinity_machine_label"),
    )


_connections: dict[str, Coordination] = {}
_connections_lock = threading.Lock()


_full_urls: dict[str, str] = {}


def remember_coordination_url(url: str) -> None:
    """Note a coordination URL with its secrets, so `connect` completes its public form."""
    public, found = secrets.split_url(url)
    if found:
        with _connections_lock:
            _full_urls[public] = url


def connect(coordination_url: str) -> Coordination:
    """One coordination connection per URL per process, for data units opened by URL.

    A public URL (data unit URLs carry one) of a coordination this process
    opened with its secrets (`remember_coordination_url`) is opened with them.
    """
    with _connections_lock:
        coordination_url = _full_urls.get(coordination_url, coordination_url)
        connection = _connections.get(coordination_url)
        if connection is None:
            connection = registry.open_coordination(coordination_url)
            _connections[coordination_url] = connection
        return connection
