"""The ``s3`` store: data units as key prefixes in an S3 bucket (AWS or S3-compatible).

``s3://bucket/prefix`` keeps unit ``du-1`` as the objects ``prefix/du-1/<name>``
(``s3://bucket`` as ``du-1/<name>``). The bucket is created on the first put if
it is missing. A unit exists while it holds an object; keys below a deeper
``/`` are not files of the unit (as subdirectories are not in the ``file`` store),
though ``delete`` removes them too.

Options (BigJob's names): ``access_key_id`` and ``secret_access_key`` (both or
neither; without them boto3's default chain applies: environment, ~/.aws, instance
role), ``region``, and ``endpoint_url`` for an S3-compatible service. The endpoint
may instead be given in the URL, ``s3://bucket/prefix?endpoint=http://host:7480``;
the rule is that the URL and the option must agree if both are given (a conflict
is an error, never a silent choice), and ``unit_url`` carries the endpoint in the
URL so that it names the files completely. A custom endpoint is addressed
path-style (``http://host/bucket/key``), as S3-compatible services expect.

Each object is whole or absent (S3 writes objects atomically), and the original
modification time travels in the object's metadata (``troy-mtime``). A put of
several files is not atomic as a whole, but every input is checked before the
first upload. Credentials never appear in messages or ``repr``; both keys are
declared ``secret=True``, so troy keeps them out of Pilot-Data records too.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, NoReturn
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from troy.model.errors import StoreError
from troy.plugins.options import Option, text
from troy.plugins.stores.base import Store, names_to_put, safe_name, safe_unit_id, writing_into


def _load(module: str) -> Any:
    """An optional dependency's module, as Any (boto3 is untyped without extra stubs)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StoreError(f"the s3 store needs boto3 (pip install 'troy[s3]'): {exc}") from exc


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MTIME = "troy-mtime"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class S3Location:
    """Where an ``s3://`` URL points: bucket, key prefix (no slashes at its ends), endpoint."""

    bucket: str
    prefix: str
    endpoint_url: str | None = None


def parse_s3_url(url: str, endpoint_option: str | None = None) -> S3Location:
    """Bucket, prefix and endpoint of ``s3://bucket[/prefix][?endpoint=URL]``.

    ``endpoint_option`` is the ``endpoint_url`` option; StoreError if it differs from
    the URL's endpoint, for an invalid bucket name, or an unknown query parameter.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3":
        raise StoreError(f"s3 store URL {url!r} must start with s3://")
    if parts.username is not None or parts.password is not None:
        raise StoreError(
            "s3 store URL must not hold credentials; use the options access_key_id and "
            "secret_access_key (or the AWS environment)"
        )
    bucket = parts.netloc
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise StoreError(
            f"s3 store URL {url!r}: invalid bucket name {bucket!r} (3-63 characters: "
            "lower-case letters, digits, '.' and '-', starting and ending with a letter or digit)"
        )
    prefix = unquote(parts.path).strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise StoreError(
            f"s3 store URL {url!r}: the key prefix {prefix!r} has an empty, '.' or '..' part"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"endpoint"})
    if unknown:
        raise StoreError(
            f"s3 store URL {url!r}: unknown query parameter {unknown[0]!r} (known: endpoint)"
        )
    endpoints = query.get("endpoint", [])
    if len(endpoints) > 1:
        raise StoreError(f"s3 store URL {url!r} gives the endpoint more than once")
    endpoint = endpoints[0] if endpoints else None
    if endpoint and endpoint_option and endpoint.rstrip("/") != endpoint_option.rstrip("/"):
        raise StoreError(
            f"s3 store URL {url!r} names endpoint {endpoint} but the option endpoint_url is "
            f"{endpoint_option}; give one, or the same in both"
        )
    endpoint = endpoint or endpoint_option or None
    if endpoint is not None:
        scheme = urlsplit(endpoint).scheme
        if scheme not in ("http", "https") or not urlsplit(endpoint).netloc:
            raise StoreError(
                f"s3 store {url!r}: endpoint {endpoint!r} is not an http:// or https:// URL"
            )
    return S3Location(bucket=bucket, prefix=prefix, endpoint_url=endpoint)


def client_arguments(location: S3Location, options: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments for ``boto3.session.Session().client("s3", ...)`` (less config).

    Keys are passed only when the options hold both; one without the other is a
    StoreError (that names the option, not its value).
    """
    key_id = options.get("access_key_id")
    secret = options.get("secret_access_key")
    if bool(key_id) != bool(secret):
        given, missing = ("access_key_id", "secret_access_key")
        if not key_id:
            given, missing = missing, given
        raise StoreError(
            f"s3 store: option {given} is set but {missing} is not; give both or neither"
        )
    arguments: dict[str, Any] = {}
    if key_id:
        arguments["aws_access_key_id"] = str(key_id)
        arguments["aws_secret_access_key"] = str(secret)
    if options.get("region"):
        arguments["region_name"] = str(options["region"])
    if location.endpoint_url:
        arguments["endpoint_url"] = location.endpoint_url
    return arguments


def describe_error(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """What went wrong in a boto3 call, in words, with any of ``secrets`` blotted out."""
    errors = _load("botocore.exceptions")
    if isinstance(exc, errors.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or "unknown"
        message = str(error.get("Message", "")) or exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode", ""
        )
        hints = {
            "InvalidAccessKeyId": "the access key is not known to the service",
            "SignatureDoesNotMatch": "the secret key does not match the access key",
            "AccessDenied": "access denied",
            "NoSuchBucket": "the bucket does not exist",
            "404": "not found",
            "403": "access denied (wrong keys, or no permission on the bucket)",
        }
        text = f"{code}: {hints.get(code) or message}"
    elif isinstance(exc, errors.NoCredentialsError | errors.PartialCredentialsError):
        text = (
            "no S3 credentials: set the options access_key_id and secret_access_key, "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials"
        )
    elif isinstance(exc, errors.EndpointConnectionError):
        text = f"cannot reach the endpoint ({exc})"
    else:
        text = f"{type(exc).__name__}: {exc}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class S3Store(Store):
    """Keeps each data unit as the objects under ``<prefix>/<unit_id>/`` in one bucket."""

    name: ClassVar[str] = "s3"
    schemes: ClassVar[tuple[str, ...]] = ("s3",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"glob"})
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {
            "access_key_id": Option(
                None,
                "the access key (with secret_access_key; else boto3's own chain)",
                text(),
                secret=True,
            ),
            "secret_access_key": Option(
                None, "the secret key (with access_key_id)", text(), secret=True
            ),
            "region": Option(None, "the bucket's region", text()),
            "endpoint_url": Option(
                None, "an S3-compatible service (http:// or https://), addressed path-style", text()
            ),
            "endpoint": Option(
                None,
                "the same as endpoint_url, in the URL (then unit URLs carry it); both must agree",
                text(),
                in_url=True,
            ),
        }
    )

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        endpoint = self.options.get("endpoint_url")
        self.location = parse_s3_url(url, str(endpoint) if endpoint else None)
        self._arguments = client_arguments(self.location, self.options)
        self._client: Any = None
        self._bucket_ready = False

    # --- boto3 ---------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use."""
        if self._client is None:
            boto3 = _load("boto3")
            config = _load("botocore.config").Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": "path"} if self.location.endpoint_url else {},
            )
            try:
                self._client = boto3.session.Session().client(
                    "s3", config=config, **self._arguments
                )
            except Exception as exc:  # botocore raises ValueError and its own errors here
                self._fail("connect", exc)
        return self._client

    def _fail(self, action: str, exc: BaseException) -> NoReturn:
        secrets = [
            str(self.options.get("secret_access_key") or ""),
            os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
            os.environ.get("AWS_SESSION_TOKEN", ""),
        ]
        raise StoreError(
            f"s3 store {self.url}: cannot {action}: {describe_error(exc, secrets)}"
        ) from exc

    @staticmethod
    def _code(exc: BaseException) -> str:
        if isinstance(exc, _load("botocore.exceptions").ClientError):
            return str(exc.response.get("Error", {}).get("Code", ""))
        return ""

    # --- keys ----------------------------------------------------------------------

    def _unit_prefix(self, unit_id: str) -> str:
        safe_unit_id(unit_id)
        prefix = self.location.prefix
        return f"{prefix}/{unit_id}/" if prefix else f"{unit_id}/"

    def _objects(self, unit_id: str, flat: bool = True) -> Iterator[dict[str, Any]]:
        """The unit's objects (``flat``: only those directly under its prefix), page by page."""
        errors = _load("botocore.exceptions")

        arguments: dict[str, Any] = {
            "Bucket": self.location.bucket,
            "Prefix": self._unit_prefix(unit_id),
        }
        if flat:
            arguments["Delimiter"] = "/"
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**arguments):
                yield from page.get("Contents", [])
                for _ in page.get("CommonPrefixes", []):
                    yield {}  # a deeper "directory": the unit exists, but it is no file
        except (errors.BotoCoreError, errors.ClientError) as exc:
            if self._code(exc) == "NoSuchBucket":
                return
            self._fail(f"list data unit {unit_id!r}", exc)

    def _files(self, unit_id: str) -> dict[str, dict[str, Any]]:
        """``{name: object}`` of the unit's files; StoreError if the unit has no object."""
        prefix = self._unit_prefix(unit_id)
        files: dict[str, dict[str, Any]] = {}
        exists = False
        for item in self._objects(unit_id):
            exists = True
            name = str(item.get("Key", ""))[len(prefix) :]
            if name:  # "" is the marker of a unit put with no files
                files[name] = item
        if not exists:
            raise StoreError(
                f"s3 store {self.url}: no data unit {unit_id!r} "
                f"(no object under s3://{self.location.bucket}/{prefix})"
            )
        return files

    def _ensure_bucket(self) -> None:
        """Create the bucket unless it exists (once per store object)."""
        errors = _load("botocore.exceptions")

        if self._bucket_ready:
            return
        bucket = self.location.bucket
        try:
            self.client.head_bucket(Bucket=bucket)
        except errors.ClientError as exc:
            if self._code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                self._fail(f"use bucket {bucket!r}", exc)
            arguments: dict[str, Any] = {"Bucket": bucket}
            region = self._arguments.get("region_name")
            # AWS wants the region named outside us-east-1; S3-compatible services
            # (a custom endpoint) often refuse region names they do not know.
            if region and region != "us-east-1" and not self.location.endpoint_url:
                arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self.client.create_bucket(**arguments)
            except errors.ClientError as create_exc:
                if self._code(create_exc) != "BucketAlreadyOwnedByYou":
                    self._fail(f"create bucket {bucket!r}", create_exc)
            except errors.BotoCoreError as create_exc:
                self._fail(f"create bucket {bucket!r}", create_exc)
        except errors.BotoCoreError as exc:
            self._fail(f"use bucket {bucket!r}", exc)
        self._bucket_ready = True

    # --- the contract --------------------------------------------------------------

    def put(self, unit_id: str, paths: Sequence[str]) -> list[str]:
        """Copy local files into data unit ``unit_id`` (created if new); return their names.

        Each file becomes one object (uploaded in parts if large), which appears whole.
        """
        errors = _load("botocore.exceptions")

        prefix = self._unit_prefix(unit_id)
        names = names_to_put(unit_id, paths)
        self._ensure_bucket()
        bucket = self.location.bucket
        try:
            if not names:  # an empty unit still exists: a marker object holds its place
                self.client.put_object(Bucket=bucket, Key=prefix, Body=b"")
            for path, name in zip(paths, names, strict=True):
                try:
                    mtime = os.stat(path).st_mtime
                except OSError as exc:
                    raise StoreError(
                        f"cannot put {path!r} into data unit {unit_id!r}: {exc.strerror or exc}"
                    ) from exc
                self.client.upload_file(
                    os.fspath(path),
                    bucket,
                    prefix + name,
                    ExtraArgs={"Metadata": {_MTIME: repr(mtime)}},
                )
        except (errors.BotoCoreError, errors.ClientError) as exc:
            self._fail(f"put into data unit {unit_id!r}", exc)
        except OSError as exc:  # upload_file reads the local file
            raise StoreError(
                f"cannot put into data unit {unit_id!r} the file {exc.filename}: "
                f"{exc.strerror or exc}"
            ) from exc
        return names

    def get(self, unit_id: str, destination: str, patterns: Sequence[str] = ("*",)) -> list[str]:
        """Copy the unit's files whose names match any glob into a local directory.

        Returns the names copied, sorted; StoreError if the unit does not exist or a
        chosen object's name is not a safe file name (nothing is written then).
        """
        if isinstance(patterns, str):
            patterns = (patterns,)
        files = self._files(unit_id)
        chosen = sorted(
            name for name in files if any(fnmatch.fnmatchcase(name, p) for p in patterns)
        )
        for name in chosen:
            try:
                safe_name(name)
            except StoreError as exc:
                key = files[name].get("Key")
                raise StoreError(
                    f"s3 store {self.url}: refusing to get object {key!r} of data unit "
                    f"{unit_id!r}: {exc}"
                ) from None
        try:
            os.makedirs(destination, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the destination {destination}: {exc.strerror or exc}"
            ) from exc
        for name in chosen:
            self._download(unit_id, str(files[name]["Key"]), destination, name)
        return chosen

    def _download(self, unit_id: str, key: str, destination: str, name: str) -> None:
        errors = _load("botocore.exceptions")

        try:
            response = self.client.get_object(Bucket=self.location.bucket, Key=key)
            body = response["Body"]
            with writing_into(destination, name) as out:
                while chunk := body.read(_CHUNK):
                    out.write(chunk)
                out.flush()
                mtime = response.get("Metadata", {}).get(_MTIME)
                # ValueError: metadata written by someone else; keep the download's time.
                with contextlib.suppress(ValueError):
                    if mtime:
                        os.utime(out.fileno(), (float(mtime), float(mtime)))
        except (errors.BotoCoreError, errors.ClientError) as exc:
            self._fail(f"get object {key!r} of data unit {unit_id!r}", exc)

    def list(self, unit_id: str) -> list[str]:
        """Names of the unit's files, sorted; StoreError if the unit does not exist."""
        return sorted(self._files(unit_id))

    def delete(self, unit_id: str) -> None:
        """Remove every object of the unit; deleting a missing unit is not an error."""
        errors = _load("botocore.exceptions")

        keys = [str(item["Key"]) for item in self._objects(unit_id, flat=False) if "Key" in item]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                response = self.client.delete_objects(
                    Bucket=self.location.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (errors.BotoCoreError, errors.ClientError) as exc:
                self._fail(f"delete data unit {unit_id!r}", exc)
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise StoreError(
                    f"s3 store {self.url}: cannot delete data unit {unit_id!r}: object "
                    f"{first.get('Key')!r}: {first.get('Code')}: {first.get('Message')} "
                    f"({len(errors)} objects not deleted)"
                )

    def size(self, unit_id: str) -> int:
        """Total bytes of the unit's files; StoreError if the unit does not exist."""
        return sum(int(item.get("Size", 0)) for item in self._files(unit_id).values())

    def unit_url(self, unit_id: str) -> str:
        """``s3://bucket/prefix/unit_id`` (``?endpoint=`` added for a custom endpoint)."""
        path = quote(self._unit_prefix(unit_id).rstrip("/"))
        url = f"s3://{self.location.bucket}/{path}"
        if self.location.endpoint_url:
            url += "?" + urlencode({"endpoint": self.location.endpoint_url})
        return url
