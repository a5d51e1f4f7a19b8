"""Descriptions of the data side: Pilot-Data (a store) and data units (sets of files).

BigJob's Pilot-Data names: a PilotDataDescription says where a store is
(``service_url``) and how to reach it; a DataUnitDescription lists the files
(``file_urls``) that make up one data unit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from troy.model.description import _Description
from troy.model.errors import BadDescription
from troy.model.validators import (
    Validator,
    non_negative_number,
    nonempty_string,
    string,
    string_list,
)

#: Fields whose values are secrets: never shown in repr, messages or logs.
SECRET_FIELDS = frozenset({"secret_access_key", "password"})


class PilotDataDescription(_Description):
    """A physical store for data units: a directory, an SSH host, an S3 bucket, iRODS.

    ``service_url`` picks the store plugin by its scheme (``file:///data/pd``,
    ``ssh://host/path``, ``s3://bucket/prefix``, ``irods://host:1247/zone/path``).
    ``size`` (MB) is recorded, not enforced. ``userkey`` is an ssh private key;
    ``access_key_id``/``secret_access_key`` are S3 credentials (else the usual
    AWS environment); ``endpoint_url`` and ``region`` (troy extensions) reach
    S3-compatible services; ``user``/``password`` are iRODS credentials. The
    affinity labels say where the store is, for affinity and data-aware placement.
    """

    __slots__ = ()
    _REQUIRED: ClassVar[tuple[str, ...]] = ("service_url",)
    _FIELDS: ClassVar[dict[str, Validator]] = {
        "service_url": nonempty_string,
        "size": non_negative_number,
        "userkey": nonempty_string,
        "access_key_id": nonempty_string,
        "secret_access_key": nonempty_string,
        "endpoint_url": nonempty_string,
        "region": nonempty_string,
        "user": nonempty_string,
        "password": nonempty_string,
        "affinity_datacenter_label": string,
        "affinity_machine_label": string,
    }

    service_url: str | None
    size: float | int | None
    userkey: str | None
    access_key_id: str | None
    secret_access_key: str | None
    endpoint_url: str | None
    region: str | None
    user: str | None
    password: str | None
    affinity_datacenter_label: str | None
    affinity_machine_label: str | None

    def store_options(self) -> dict[str, Any]:
        """What the store plugin is opened with (everything but the URL, size and labels)."""
        skip = {"service_url", "size", "affinity_datacenter_label", "affinity_machine_label"}
        return {name: value for name, value in self.as_dict().items() if name not in skip}

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{name}={'***' if name in SECRET_FIELDS else repr(value)}"
            for name, value in self.as_dict().items()
        )
        return f"{type(self).__name__}({inner})"


class DataUnitDescription(_Description):
    """A logical set of files: ``file_urls`` are local paths (or ``file://`` URLs).

    An empty list makes an empty data unit, e.g. one that units' ``output_data``
    fills. The affinity labels pick a Pilot-Data with the same labels when a
    ComputeDataService places the data unit.
    """

    __slots__ = ()
    _FIELDS: ClassVar[dict[str, Validator]] = {
        "file_urls": string_list,
        "affinity_datacenter_label": string,
        "affinity_machine_label": string,
    }

    file_urls: list[str] | None
    affinity_datacenter_label: str | None
    affinity_machine_label: str | None


def local_paths(file_urls: Sequence[str], field: str = "file_urls") -> list[str]:
    """Absolute paths of ``file_urls`` (paths or file:// URLs); BadDescription if not files."""
    paths = []
    for index, url in enumerate(file_urls):
        path = url
        if url.startswith("file://"):
            path = url[len("file://") :]
            if not path.startswith("/"):  # file://localhost/path
                path = "/" + path.partition("/")[2]
        elif "://" in url:
            raise BadDescription(
                f"{field}[{index}]", f"{url!r}: only local files (paths or file:// URLs) can be put"
            )
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(path):
            raise BadDescription(f"{field}[{index}]", f"{url!r} is not a readable file")
        paths.append(path)
    names = [os.path.basename(path) for path in paths]
    for name in {name for name in names if names.count(name) > 1}:
        raise BadDescription(field, f"two files are named {name!r}: a data unit is flat")
    return paths
