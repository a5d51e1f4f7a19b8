"""The s3 store against a real S3 server (radosgw): the conformance suite, then what is special.

The server is scripts/s3-server.sh's (``s3_endpoint()`` reads where it is and its
keys). Every test module run uses a fresh bucket ``troy-test-<random>``, deleted
with all its objects at the end; the offline tests at the bottom (URLs, options,
error texts) need no server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from services import S3Endpoint, s3_endpoint

from troy.model.errors import StoreError
from troy.plugins import registry
from troy.plugins.stores.s3 import S3Store, client_arguments, describe_error, parse_s3_url
from troy.testing.stores import StoreSuite


def _client(endpoint: S3Endpoint) -> Any:
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint.url,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name="us-east-1",
    )


def _empty_and_delete(client: Any, bucket: str) -> None:
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        client.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise


@pytest.fixture(scope="module")
def endpoint() -> S3Endpoint:
    return s3_endpoint()


@pytest.fixture(scope="module")
def bucket(endpoint: S3Endpoint) -> Iterator[str]:
    """A fresh bucket name for this module; the store creates it, it is deleted at the end."""
    name = f"troy-test-{uuid.uuid4().hex[:12]}"
    yield name
    _empty_and_delete(_client(endpoint), name)


@pytest.fixture
def client(endpoint: S3Endpoint) -> Any:
    """A plain boto3 client on the test server, to look behind the store's back."""
    return _client(endpoint)


@pytest.mark.s3
class TestS3Store(StoreSuite):
    @pytest.fixture
    def store_url(self, bucket: str, tmp_path: Path) -> str:
        return f"s3://{bucket}/pd/{tmp_path.name}"

    @pytest.fixture
    def store_options(self, endpoint: S3Endpoint) -> dict[str, Any]:
        return dict(endpoint.options())


@pytest.mark.s3
class TestS3StoreOnTheServer:
    """Where the files go, and what the store does with objects it did not write."""

    def test_bucket_is_created_on_first_put_and_units_are_key_prefixes(
        self, endpoint: S3Endpoint, client: Any, tmp_path: Path
    ) -> None:
        bucket = f"troy-test-{uuid.uuid4().hex[:12]}"
        source = tmp_path / "a.txt"
        source.write_bytes(b"abc")
        try:
            store = S3Store(f"s3://{bucket}/my/pd", endpoint.options())
            store.put("du-1", [str(source)])
            # A second store object on the same bucket: "create" meets an existing bucket.
            S3Store(f"s3://{bucket}/my/pd", endpoint.options()).put("du-2", [str(source)])

            keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
            assert sorted(keys) == ["my/pd/du-1/a.txt", "my/pd/du-2/a.txt"]
            assert client.get_object(Bucket=bucket, Key="my/pd/du-1/a.txt")["Body"].read() == b"abc"
        finally:
            _empty_and_delete(client, bucket)

    def test_an_empty_put_makes_an_empty_unit(
        self, endpoint: S3Endpoint, bucket: str, tmp_path: Path
    ) -> None:
        store = S3Store(f"s3://{bucket}/{tmp_path.name}", endpoint.options())
        store.put("du-empty", [])

        assert store.list("du-empty") == []
        assert store.size("du-empty") == 0
        store.delete("du-empty")
        with pytest.raises(StoreError, match="no data unit"):
            store.list("du-empty")

    def test_unsafe_object_names_are_refused_on_get_and_nothing_is_written(
        self, endpoint: S3Endpoint, bucket: str, client: Any, tmp_path: Path
    ) -> None:
        store = S3Store(f"s3://{bucket}/{tmp_path.name}", endpoint.options())
        prefix = f"{tmp_path.name}/du-1/"
        for name in ("ok.txt", "..", "up\\evil"):
            client.put_object(Bucket=bucket, Key=prefix + name, Body=b"planted")
        sandbox = tmp_path / "sandbox"
        destination = sandbox / "unit"

        assert store.list("du-1") == ["..", "ok.txt", "up\\evil"]
        for pattern in ("*", ".*", "up*"):
            with pytest.raises(StoreError, match="unsafe file name"):
                store.get("du-1", str(destination), [pattern])
        assert not sandbox.exists()
        assert store.get("du-1", str(destination), ["ok.txt"]) == ["ok.txt"]
        assert sorted(p.name for p in sandbox.rglob("*")) == ["ok.txt", "unit"]

    def test_deeper_keys_are_not_files_of_the_unit_but_are_deleted_with_it(
        self, endpoint: S3Endpoint, bucket: str, client: Any, tmp_path: Path
    ) -> None:
        store = S3Store(f"s3://{bucket}/{tmp_path.name}", endpoint.options())
        prefix = f"{tmp_path.name}/du-1/"
        client.put_object(Bucket=bucket, Key=prefix + "top.txt", Body=b"12345")
        client.put_object(Bucket=bucket, Key=prefix + "../escape", Body=b"x")
        client.put_object(Bucket=bucket, Key=prefix + "sub/deep.txt", Body=b"xx")

        assert store.list("du-1") == ["top.txt"]
        assert store.size("du-1") == 5
        assert store.get("du-1", str(tmp_path / "out")) == ["top.txt"]
        assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["top.txt"]

        store.delete("du-1")
        assert client.list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] == 0

    def test_more_objects_than_one_page_are_listed_and_deleted(
        self, endpoint: S3Endpoint, bucket: str, client: Any, tmp_path: Path
    ) -> None:
        store = S3Store(f"s3://{bucket}/{tmp_path.name}", endpoint.options())
        prefix = f"{tmp_path.name}/du-1/"
        names = [f"f{i:04d}" for i in range(1005)]  # a page holds 1000, so does one delete
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda n: client.put_object(Bucket=bucket, Key=prefix + n, Body=b"1"), names
                )
            )

        assert store.list("du-1") == names
        assert store.size("du-1") == 1005

        store.delete("du-1")
        assert client.list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] == 0

    def test_a_large_file_goes_up_in_parts_and_comes_back_whole(
        self, endpoint: S3Endpoint, bucket: str, client: Any, tmp_path: Path
    ) -> None:
        data = os.urandom(1024 * 1024) * 9  # over boto3's 8 MiB multipart threshold
        source = tmp_path / "big.bin"
        source.write_bytes(data)
        store = S3Store(f"s3://{bucket}/{tmp_path.name}", endpoint.options())
        store.put("du-1", [str(source)])

        etag = client.head_object(Bucket=bucket, Key=f"{tmp_path.name}/du-1/big.bin")["ETag"]
        assert "-" in etag  # a multipart upload's ETag ends in -<parts>
        store.get("du-1", str(tmp_path / "out"))
        assert (tmp_path / "out" / "big.bin").read_bytes() == data
        assert store.size("du-1") == len(data)

    def test_modification_times_travel_with_the_object(
        self, endpoint: S3Endpoint, bucket: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "old.txt"
        source.write_bytes(b"old")
        os.utime(source, (1_000_000_000, 1_000_000_000))
        store = S3Store(f"s3://{bucket}/{tmp_path.name}", endpoint.options())
        store.put("du-1", [str(source)])

        store.get("du-1", str(tmp_path / "out"))

        assert (tmp_path / "out" / "old.txt").stat().st_mtime == 1_000_000_000

    def test_endpoint_in_the_url_works_and_unit_urls_carry_it(
        self, endpoint: S3Endpoint, bucket: str, tmp_path: Path
    ) -> None:
        keys = {k: v for k, v in endpoint.options().items() if k != "endpoint_url"}
        url = f"s3://{bucket}/{tmp_path.name}?endpoint={endpoint.url}"
        source = tmp_path / "a.txt"
        source.write_bytes(b"a")
        store = registry.for_url("store", url)(url, keys)
        store.put("du-1", [str(source)])

        unit_url = store.unit_url("du-1")
        assert unit_url.startswith(f"s3://{bucket}/{tmp_path.name}/du-1?endpoint=")
        assert parse_s3_url(unit_url).endpoint_url == endpoint.url
        assert S3Store(url, {**keys, "endpoint_url": endpoint.url}).list("du-1") == ["a.txt"]

    def test_a_wrong_secret_is_a_store_error_that_shows_no_key(
        self, endpoint: S3Endpoint, bucket: str, tmp_path: Path
    ) -> None:
        wrong = "wrong-secret-" + uuid.uuid4().hex
        store = S3Store(
            f"s3://{bucket}/{tmp_path.name}", {**endpoint.options(), "secret_access_key": wrong}
        )

        with pytest.raises(StoreError, match=r"SignatureDoesNotMatch|AccessDenied") as caught:
            store.list("du-1")

        text = f"{caught.value} {store!r} {store} {caught.value.__cause__}"
        assert wrong not in text
        assert endpoint.secret_key not in text

    def test_an_unknown_access_key_is_a_store_error(
        self, endpoint: S3Endpoint, bucket: str, tmp_path: Path
    ) -> None:
        store = S3Store(
            f"s3://{bucket}/{tmp_path.name}",
            {**endpoint.options(), "access_key_id": "nobody", "secret_access_key": "x"},
        )
        source = tmp_path / "a.txt"
        source.write_bytes(b"a")

        # A HEAD answer has no body, so radosgw's "InvalidAccessKeyId" may show as a bare 403.
        with pytest.raises(StoreError, match=r"InvalidAccessKeyId|403: access denied"):
            store.put("du-1", [str(source)])

    def test_a_missing_bucket_means_a_missing_unit(
        self, endpoint: S3Endpoint, tmp_path: Path
    ) -> None:
        store = S3Store(f"s3://troy-none-{uuid.uuid4().hex[:12]}/pd", endpoint.options())

        with pytest.raises(StoreError, match="no data unit"):
            store.list("du-1")
        store.delete("du-1")  # nothing to delete: not an error


class TestS3StoreOffline:
    """URL, options and error texts: no server needed."""

    @pytest.mark.parametrize(
        ("url", "bucket", "prefix", "endpoint"),
        [
            ("s3://bucket", "bucket", "", None),
            ("s3://bucket/", "bucket", "", None),
            ("s3://my.bucket-1/a/b/", "my.bucket-1", "a/b", None),
            ("s3://bkt/p%20q?endpoint=http://h:7480", "bkt", "p q", "http://h:7480"),
        ],
    )
    def test_url_parts(self, url: str, bucket: str, prefix: str, endpoint: str | None) -> None:
        assert parse_s3_url(url) == (parse_s3_url(url).__class__(bucket, prefix, endpoint))

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("s3://ab/pd", "invalid bucket name"),
            ("s3://Upper/pd", "invalid bucket name"),
            ("s3://b_c/pd", "invalid bucket name"),
            ("s3:///pd", "invalid bucket name"),
            ("s3://bucket/a//b", "empty, '.' or '..' part"),
            ("s3://bucket/a/../b", "empty, '.' or '..' part"),
            ("s3://bucket/pd?region=x", "unknown query parameter 'region'"),
            ("s3://bucket/pd?endpoint=ftp://h", "not an http"),
            ("s3://bucket/pd?endpoint=http://a&endpoint=http://b", "more than once"),
            ("http://bucket/pd", "must start with s3://"),
        ],
    )
    def test_bad_urls_are_store_errors(self, url: str, message: str) -> None:
        with pytest.raises(StoreError, match=message):
            S3Store(url)

    def test_credentials_in_the_url_are_refused_and_not_repeated(self) -> None:
        with pytest.raises(StoreError) as caught:
            S3Store("s3://AKIDEXAMPLE:s3cr3t@bucket/pd")

        assert "s3cr3t" not in str(caught.value)
        assert "AKIDEXAMPLE" not in str(caught.value)

    def test_endpoint_in_url_and_option_must_agree(self) -> None:
        url = "s3://bucket/pd?endpoint=http://a:1"
        assert S3Store(url, {"endpoint_url": "http://a:1/"}).location.endpoint_url == "http://a:1"
        assert S3Store("s3://bucket", {"endpoint_url": "http://b"}).location.endpoint_url == (
            "http://b"
        )
        with pytest.raises(StoreError, match="give one, or the same in both"):
            S3Store(url, {"endpoint_url": "http://b:2"})

    def test_options_become_client_arguments(self) -> None:
        location = parse_s3_url("s3://bucket/pd?endpoint=http://h:1")
        options = {"access_key_id": "AK", "secret_access_key": "SK", "region": "eu-west-1"}

        assert client_arguments(location, options) == {
            "aws_access_key_id": "AK",
            "aws_secret_access_key": "SK",
            "region_name": "eu-west-1",
            "endpoint_url": "http://h:1",
        }
        assert client_arguments(parse_s3_url("s3://bucket"), {}) == {}

    def test_one_key_without_the_other_is_refused_without_showing_it(self) -> None:
        with pytest.raises(StoreError, match="access_key_id is set but secret_access_key") as e:
            S3Store("s3://bucket", {"access_key_id": "AKIDSHOWN"})
        assert "AKIDSHOWN" not in str(e.value)
        with pytest.raises(StoreError, match="secret_access_key is set but access_key_id"):
            S3Store("s3://bucket", {"secret_access_key": "SECRETSHOWN"})

    def test_repr_and_messages_hold_no_secret(self) -> None:
        store = S3Store("s3://bucket/pd", {"access_key_id": "AK", "secret_access_key": "SK-XYZ"})

        assert "SK-XYZ" not in repr(store) and "SK-XYZ" not in str(store)

    def test_error_texts(self) -> None:
        denied = ClientError(
            {"Error": {"Code": "SignatureDoesNotMatch", "Message": "key SK-XYZ"}}, "ListObjectsV2"
        )
        assert describe_error(denied, ["SK-XYZ"]) == (
            "SignatureDoesNotMatch: the secret key does not match the access key"
        )
        other = ClientError({"Error": {"Code": "SlowDown", "Message": "SK-XYZ is busy"}}, "Put")
        assert describe_error(other, ["SK-XYZ"]) == "SlowDown: *** is busy"
        assert "access_key_id" in describe_error(NoCredentialsError())
        unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b")
        assert "http://127.0.0.1:1/b" in describe_error(unreachable)

    def test_an_unreachable_endpoint_is_a_store_error_naming_it(self) -> None:
        store = S3Store(
            "s3://bucket/pd",
            {"endpoint_url": "http://127.0.0.1:1", "access_key_id": "a", "secret_access_key": "b"},
        )

        with pytest.raises(StoreError, match=r"127\.0\.0\.1:1"):
            store.list("du-1")

    def test_registry_picks_it_for_s3_urls(self) -> None:
        assert registry.for_url("store", "s3://bucket/pd") is S3Store
