"""The irods store: offline what its URLs, logins and errors mean; live the conformance suite.

No iRODS server can run on the machines this project is developed and tested on
(there is no Debian package of the server, and it needs a database set up), so:

* the offline tests check the store's own logic (URL parsing, how options, the
  environment and iinit's environment file become ``iRODSSession`` arguments,
  error texts) and drive the real python-irodsclient against a closed port; no
  fake iRODS server stands in for a real one;
* the live tier is the store conformance suite, run when ``TROY_TEST_IRODS_URL``
  names a real server (with ``IRODS_USER_NAME`` and ``IRODS_PASSWORD``, or an
  iinit environment file). Without it the suite skips, saying how to run it;
  that skip stands even under ``TROY_REQUIRE_SERVICES=1``, because no server can
  be started here.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from irods.exception import (
    CAT_INVALID_AUTHENTICATION,
    CAT_NO_ACCESS_PERMISSION,
    CollectionDoesNotExist,
    NetworkException,
)

from troy.model.errors import StoreError
from troy.plugins import registry
from troy.plugins.stores.irods import (
    IrodsLocation,
    IrodsStore,
    describe_error,
    environment_file,
    parse_irods_url,
    session_arguments,
)
from troy.testing.stores import StoreSuite

LIVE_SKIP = (
    "no iRODS server: set TROY_TEST_IRODS_URL=irods://host:1247/zone/path, IRODS_USER_NAME, "
    "IRODS_PASSWORD to run the live suite"
)
LOCATION = IrodsLocation(
    host="data.example.org", port=1247, zone="tempZone", collection="/tempZone/home/alice/pd"
)


@pytest.mark.irods
class TestIrodsStore(StoreSuite):
    """The conformance suite against a real iRODS server, when one is named."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        url = os.environ.get("TROY_TEST_IRODS_URL", "")
        if not url:
            pytest.skip(LIVE_SKIP)  # allowed under TROY_REQUIRE_SERVICES=1: see the docstring
        return f"{url.rstrip('/')}/troy-test-{tmp_path.name}"


class TestIrodsUrls:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            (
                "irods://data.example.org/tempZone/home/alice/pd",
                ("data.example.org", 1247, "tempZone", "/tempZone/home/alice/pd"),
            ),
            (
                "irods://data.example.org:1248/tempZone/home/alice/pd/",
                ("data.example.org", 1248, "tempZone", "/tempZone/home/alice/pd"),
            ),
            ("irods://h/z", ("h", 1247, "z", "/z")),
            ("irods://h/z/my%20pd", ("h", 1247, "z", "/z/my pd")),
        ],
    )
    def test_url_parts(self, url: str, expected: tuple[str, int, str, str]) -> None:
        location = parse_irods_url(url)

        assert (location.host, location.port, location.zone, location.collection) == expected

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("irods://host", "names no zone"),
            ("irods://host/", "names no zone"),
            ("irods:///zone/pd", "names no host"),
            ("irods://host:notaport/zone", "invalid port"),
            ("irods://host/zone//pd", "empty, '.' or '..' part"),
            ("irods://host/zone/../other", "empty, '.' or '..' part"),
            ("irods://host/zone/pd?vo=osg", "query parameters"),
            ("file:///zone/pd", "must start with irods://"),
        ],
    )
    def test_bad_urls_are_store_errors(self, url: str, message: str) -> None:
        with pytest.raises(StoreError, match=message):
            IrodsStore(url)

    def test_credentials_in_the_url_are_refused_and_not_repeated(self) -> None:
        with pytest.raises(StoreError, match="options user and password") as caught:
            IrodsStore("irods://alice:s3cr3t@host/zone/pd")

        assert "s3cr3t" not in str(caught.value)

    def test_unit_url(self) -> None:
        store = IrodsStore("irods://h/z/my%20pd")

        assert store.unit_url("du-1") == "irods://h:1247/z/my%20pd/du-1"
        assert parse_irods_url(store.unit_url("du-1")).collection == "/z/my pd/du-1"
        with pytest.raises(StoreError, match="invalid data unit id"):
            store.unit_url("../du-1")

    def test_registry_picks_it_for_irods_urls(self) -> None:
        assert registry.for_url("store", "irods://h/z/pd") is IrodsStore

    def test_repr_shows_no_password(self) -> None:
        store = IrodsStore("irods://h/z/pd", {"user": "alice", "password": "pw-XYZ"})

        assert "pw-XYZ" not in repr(store) and "pw-XYZ" not in str(store)


def _env_file(home: Path, **settings: Any) -> Path:
    path = home / ".irods" / "irods_environment.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings))
    return path


class TestIrodsLogin:
    """How options, the environment and iinit's file become iRODSSession arguments."""

    def test_user_and_password_options_with_the_url_server(self, tmp_path: Path) -> None:
        options = {"user": "alice", "password": "pw"}

        assert session_arguments(LOCATION, options, {}, str(tmp_path)) == {
            "host": "data.example.org",
            "port": 1247,
            "zone": "tempZone",
            "user": "alice",
            "password": "pw",
        }

    def test_the_environment_gives_what_the_options_do_not(self, tmp_path: Path) -> None:
        environ = {"IRODS_USER_NAME": "bob", "IRODS_PASSWORD": "env-pw"}

        assert session_arguments(LOCATION, {}, environ, str(tmp_path))["user"] == "bob"
        arguments = session_arguments(LOCATION, {"user": "alice"}, environ, str(tmp_path))
        assert (arguments["user"], arguments["password"]) == ("alice", "env-pw")

    def test_without_user_and_password_iinits_file_is_used(self, tmp_path: Path) -> None:
        path = _env_file(
            tmp_path,
            irods_host="DATA.example.org",
            irods_port=1247,
            irods_zone_name="tempZone",
            irods_user_name="alice",
        )

        assert session_arguments(LOCATION, {}, {}, str(tmp_path)) == {"irods_env_file": str(path)}
        assert session_arguments(LOCATION, {"password": "pw"}, {}, str(tmp_path)) == {
            "irods_env_file": str(path),
            "password": "pw",
        }

    def test_irods_environment_file_names_the_file(self, tmp_path: Path) -> None:
        named = tmp_path / "elsewhere.json"
        named.write_text("{}")
        environ = {"IRODS_ENVIRONMENT_FILE": str(named)}

        assert environment_file(environ, str(tmp_path)) == named
        assert session_arguments(LOCATION, {}, environ, str(tmp_path)) == {
            "irods_env_file": str(named)
        }

    @pytest.mark.parametrize(
        ("setting", "value"),
        [
            ("irods_host", "other.example.org"),
            ("irods_port", 1248),
            ("irods_zone_name", "otherZone"),
            ("irods_user_name", "mallory"),
        ],
    )
    def test_an_environment_file_for_another_server_or_user_is_refused(
        self, tmp_path: Path, setting: str, value: object
    ) -> None:
        _env_file(tmp_path, **{setting: value})

        with pytest.raises(StoreError, match=f"{setting}=.*give the options user and password"):
            session_arguments(LOCATION, {"user": "alice"}, {}, str(tmp_path))

    def test_an_unreadable_environment_file_is_named(self, tmp_path: Path) -> None:
        path = _env_file(tmp_path)
        path.write_text("{not json")

        with pytest.raises(StoreError, match=r"irods_environment\.json"):
            session_arguments(LOCATION, {}, {}, str(tmp_path))

    def test_no_login_at_all_says_how_to_give_one(self, tmp_path: Path) -> None:
        with pytest.raises(StoreError, match="no iRODS login: give the options user and password"):
            session_arguments(LOCATION, {}, {}, str(tmp_path))

    def test_a_user_without_password_is_named_but_never_a_password(self, tmp_path: Path) -> None:
        with pytest.raises(StoreError, match="no password for iRODS user 'alice'"):
            session_arguments(LOCATION, {"user": "alice"}, {}, str(tmp_path))
        _env_file(tmp_path, irods_host="other")
        with pytest.raises(StoreError) as caught:
            session_arguments(LOCATION, {"password": "pw-SECRET"}, {}, str(tmp_path))
        assert "pw-SECRET" not in str(caught.value)


class TestIrodsErrors:
    @pytest.mark.parametrize(
        ("exc", "text"),
        [
            (CAT_INVALID_AUTHENTICATION(), "authentication failed"),
            (CAT_NO_ACCESS_PERMISSION(), "permission denied"),
            (CollectionDoesNotExist(), "does not exist"),
            (NetworkException("Could not connect"), "cannot reach data.example.org:1247"),
            (ConnectionRefusedError(111, "Connection refused"), "cannot reach data.example.org"),
        ],
    )
    def test_error_texts(self, exc: BaseException, text: str) -> None:
        assert text in describe_error(exc, LOCATION)

    def test_the_real_client_on_a_closed_port_gives_a_store_error_naming_the_server(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        monkeypatch.delenv("IRODS_ENVIRONMENT_FILE", raising=False)
        store = IrodsStore(f"irods://127.0.0.1:{port}/zone/pd", {"user": "u", "password": "pw-Q"})

        with pytest.raises(
            StoreError, match=f"cannot list data unit 'du-1': cannot reach 127.0.0.1:{port}"
        ) as caught:
            store.list("du-1")
        assert "pw-Q" not in str(caught.value)

    def test_unit_ids_are_checked_before_any_connection(self) -> None:
        store = IrodsStore("irods://127.0.0.1:1/zone/pd", {"user": "u", "password": "p"})

        for call in (lambda: store.list("a/b"), lambda: store.delete(".."), lambda: store.size("")):
            with pytest.raises(StoreError, match="invalid data unit id"):
                call()
