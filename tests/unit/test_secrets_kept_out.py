"""Secrets stay out of records, data unit URLs, run files and what the CLI prints.

The live run with a Redis password and S3 keys is in
tests/integration/test_secrets_hidden.py; these say the same of each piece alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import troy.cli
from troy.api.data_service import PilotDataService
from troy.model import secrets
from troy.plugins import data_records

ACCESS_KEY = "AKIAKEPTOUT0000001"
SECRET_KEY = "s3-secret-key-kept-out-of-records"
IRODS_PASSWORD = "irods-password-kept-out"


def every_file_text(*roots: Path) -> str:
    """The text of every file under ``roots`` (bytes that are not UTF-8 replaced)."""
    return "\n".join(
        path.read_text(errors="replace")
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file()
    )


def recorded_pilot_data(coordination_url: str, description: dict[str, Any]) -> dict[str, Any]:
    """The record of a Pilot-Data made from ``description``."""
    with PilotDataService(coordination=coordination_url) as service:
        pilot_data = service.create_pilot(description)
        return data_records.read_pilot_data(service._manager.coordination, pilot_data.id)


def test_a_pilot_data_with_explicit_s3_keys_records_neither_key(
    coordination_url: str, tmp_path: Path, troy_home: Path
) -> None:
    record = recorded_pilot_data(
        coordination_url,
        {
            "service_url": "s3://troy-kept-out/pd",
            "endpoint_url": "http://127.0.0.1:1",
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "region": "us-east-1",
        },
    )
    # This process made it: its stores open with the keys (from memory, not the record).
    store = data_records.open_store(record)
    assert record["withheld"] == ["access_key_id", "secret_access_key"]
    assert record["description"]["endpoint_url"] == "http://127.0.0.1:1"
    assert store.options["secret_access_key"] == SECRET_KEY
    written = every_file_text(tmp_path)
    assert "s3://troy-kept-out/pd" in written  # the check reads the records
    assert SECRET_KEY not in written and ACCESS_KEY not in written


def test_an_irods_password_is_not_recorded_but_its_user_is(
    coordination_url: str, tmp_path: Path
) -> None:
    record = recorded_pilot_data(
        coordination_url,
        {
            "service_url": "irods://127.0.0.1:1247/tempZone/home/troy",
            "user": "troy",
            "password": IRODS_PASSWORD,
        },
    )
    assert record["withheld"] == ["password"]
    assert record["description"]["user"] == "troy"
    assert IRODS_PASSWORD not in every_file_text(tmp_path)


def test_store_secrets_travel_to_an_agent_as_its_secrets_and_back() -> None:
    keys = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}
    data_records.keep_store_secrets("pd-travel", keys)
    given = {"password": "coordination-pw", **data_records.agent_store_secrets()}
    assert given["store:pd-travel:secret_access_key"] == SECRET_KEY
    data_records._store_secrets.pop("pd-travel")
    rest = data_records.take_store_secrets(given)
    assert rest == {"password": "coordination-pw"}
    store = data_records.open_store(
        {"id": "pd-travel", "url": "s3://troy-kept-out", "description": {}}
    )
    assert store.options["secret_access_key"] == SECRET_KEY


def test_a_data_unit_url_carries_the_public_coordination_url() -> None:
    url = data_records.data_unit_url("redis://app:hunter22@127.0.0.1:6390/0", "du-1")
    assert url == "redis://app@127.0.0.1:6390/0#du-1"


def test_a_public_url_opens_the_coordination_this_process_knows_with_its_secrets(
    tmp_path: Path,
) -> None:
    full = (tmp_path / "c").as_uri() + "?password=kept-in-memory"
    data_records.remember_coordination_url(full)
    public = secrets.split_url(full)[0]
    assert data_records._full_urls[public] == full


def test_the_cli_scrubs_an_error_that_is_not_troys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets.remember("cli-secret-value")

    def failing(args: object) -> int:
        raise RuntimeError("client said: bad login for redis://:cli-secret-value@host/0")

    monkeypatch.setattr(troy.cli, "cmd_status", failing)
    assert troy.cli.main(["status"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError" in err and "Traceback" in err
    assert "cli-secret-value" not in err


def test_the_cli_scrubs_troy_errors_and_log_lines(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from troy.model.errors import CoordinationError

    secrets.remember("log-secret-value")

    def failing(args: object) -> int:
        logging.getLogger("troy.test").warning("tried log-secret-value")
        raise CoordinationError("refused log-secret-value")

    monkeypatch.setattr(troy.cli, "cmd_status", failing)
    assert troy.cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert "refused ***" in err and "tried ***" in caplog.text
    assert "log-secret-value" not in err + caplog.text


def test_a_store_url_with_a_password_is_refused_before_it_is_recorded(
    coordination_url: str, tmp_path: Path
) -> None:
    from troy.model.errors import BadDescription

    with (
        PilotDataService(coordination=coordination_url) as service,
        pytest.raises(BadDescription, match="service_url") as caught,
    ):
        service.create_pilot({"service_url": "irods://troy:url-password@host/zone/p"})
    assert "url-password" not in str(caught.value)
    assert "url-password" not in every_file_text(tmp_path)


def test_data_unit_urls_in_a_unit_description_lose_their_password() -> None:
    from troy.model.description import WorkUnitDescription

    full = "redis://:desc-password@127.0.0.1:6390/0#du-1"
    description = WorkUnitDescription(
        {
            "executable": "/bin/true",
            "input_data": [full, {full: ["*.txt"]}],
            "output_data": [{full: ["out-*"]}],
        }
    )
    recorded = repr(description.as_dict())
    assert "desc-password" not in recorded
    assert "redis://127.0.0.1:6390/0#du-1" in recorded
