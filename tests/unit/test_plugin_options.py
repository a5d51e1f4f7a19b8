"""Options of every plugin kind: declared in ``option_specs``, checked before anything starts.

Real plugins through the real services; a refused option leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import troy
from troy.cli import main
from troy.model.errors import BadDescription
from troy.plugins.coordination.redis import RedisCoordination
from troy.plugins.options import Option, check_options, choice, number, text, url_options
from troy.plugins.registry import open_coordination
from troy.plugins.schedulers.base import Option as SchedulerOption
from troy.plugins.stores.s3 import S3Store


def test_option_is_still_importable_from_the_scheduler_contract() -> None:
    assert SchedulerOption is Option


# -- coordination: the URL's query ------------------------------------------------------
def test_a_file_coordination_url_with_a_query_is_refused_and_makes_no_directory(
    tmp_path: Path,
) -> None:
    root = tmp_path / "coordination"

    with pytest.raises(BadDescription) as error:
        troy.WorkUnitService(coordination=f"file://{root}?retry=5")

    assert error.value.field == "coordination URL ?retry"
    assert "coordination 'file' has no option 'retry'; it takes none" in str(error.value)
    assert not root.exists()


def test_a_misspelt_redis_option_is_named_with_a_hint_before_connecting() -> None:
    # Port 1 answers nobody: the check comes before any connection (which would retry 30 s).
    with pytest.raises(BadDescription) as error:
        open_coordination("redis://:secret@127.0.0.1:1/0?prefx=mine")

    message = str(error.value)
    assert message.startswith("coordination URL ?prefx: coordination 'redis' has no option")
    assert "its options: password_file, prefix, retry, ssl_ca_certs, ssl_cert_reqs" in message
    assert "did you mean 'prefix'?" in message
    assert "secret" not in message


def test_a_mistyped_redis_option_names_plugin_option_expected_and_got() -> None:
    with pytest.raises(BadDescription) as error:
        open_coordination("redis://127.0.0.1:1/0?retry=soon")

    assert error.value.field == "coordination URL ?retry"
    assert "coordination 'redis': expected a number, got 'soon'" in str(error.value)


def test_a_zmq_url_is_checked_before_a_broker_is_bound(tmp_path: Path) -> None:
    with pytest.raises(BadDescription, match=r"did you mean 'journal'\?"):
        open_coordination(f"tcp://127.0.0.1:5757?jornal={tmp_path}")


def test_a_query_parameter_given_twice_is_refused() -> None:
    with pytest.raises(BadDescription, match="more than once"):
        url_options("redis://h/0?retry=1&retry=2")


def test_a_plain_path_has_no_query() -> None:
    assert url_options("/data/what?ever") == {}


def test_the_redis_options_as_checked() -> None:
    checked = RedisCoordination.check_options({"retry": "2.5", "ssl_cert_reqs": "none"})
    assert checked == {
        "prefix": "troy",
        "retry": 2.5,
        "password_file": None,
        "ssl_ca_certs": None,
        "ssl_certfile": None,
        "ssl_keyfile": None,
        "ssl_cert_reqs": "none",
    }


# -- stores: the Pilot-Data description and its URL's query ------------------------------
def test_an_unknown_store_url_option_is_refused_and_nothing_recorded(tmp_path: Path) -> None:
    with troy.PilotDataService(coordination=str(tmp_path / "c")) as service:
        with pytest.raises(BadDescription) as error:
            service.create({"service_url": "s3://bucket/pd?regoin=eu"})
        assert error.value.field == "service_url ?regoin"
        assert "store 's3' has no option 'regoin'; its options: endpoint" in str(error.value)

        with pytest.raises(BadDescription) as error:
            service.create({"service_url": "s3://bucket/pd?endpoint="})
        assert error.value.field == "service_url ?endpoint"
        assert "store 's3': expected a non-empty text, got ''" in str(error.value)

        with pytest.raises(BadDescription, match=r"store 'file' has no option 'x'"):
            service.create({"service_url": f"file://{tmp_path}/pd?x=1"})
        assert service.list_pilots() == []
    assert not (tmp_path / "pd").exists()


def test_a_description_option_the_store_does_not_take_is_refused(tmp_path: Path) -> None:
    with troy.PilotDataService(coordination=str(tmp_path / "c")) as service:
        with pytest.raises(BadDescription) as error:
            service.create({"service_url": str(tmp_path / "pd"), "userkey": "~/.ssh/id"})
        assert error.value.field == "userkey"
        assert "store 'file' has no option 'userkey'; it takes none" in str(error.value)
        assert service.list_pilots() == []


def test_the_s3_options_are_declared_where_they_are_given() -> None:
    in_url = {name for name, spec in S3Store.option_specs.items() if spec.in_url}
    assert in_url == {"endpoint"}
    assert S3Store.check_options({"region": "eu-west-1"}, {"endpoint": "http://h:7480"}) == {
        "access_key_id": None,
        "secret_access_key": None,
        "region": "eu-west-1",
        "endpoint_url": None,
        "endpoint": "http://h:7480",
    }


# -- backends: the resource URL's query -------------------------------------------------
def test_a_condor_option_is_checked_before_the_pilot_is_recorded(tmp_path: Path) -> None:
    with troy.PilotJobService(coordination=str(tmp_path / "c")) as pilots:
        with pytest.raises(BadDescription) as error:
            pilots.create("condor://cm.example.org?univers=grid", {"number_of_processes": 1})
        assert error.value.field == "resource URL ?univers"
        assert "backend 'condor' has no option 'univers'" in str(error.value)
        assert "did you mean 'universe'?" in str(error.value)

        with pytest.raises(BadDescription) as error:
            pilots.create("condor://cm.example.org?universe=local", {"number_of_processes": 1})
        assert "backend 'condor': expected one of 'vanilla', 'grid', got 'local'" in str(
            error.value
        )
        with pytest.raises(BadDescription, match="backend 'local' has no option 'slots'"):
            pilots.create("fork://localhost?slots=2", {"number_of_processes": 1})
        assert pilots.list() == []


# -- schedulers: scheduler_options, as before -------------------------------------------
def test_a_misspelt_scheduler_option_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(BadDescription) as error:
        troy.WorkUnitService(
            coordination=str(tmp_path / "c"),
            scheduler="affinity",
            scheduler_options={"bindng": "late"},
        )
    assert error.value.field == "scheduler_options.bindng"
    assert "scheduler 'affinity' has no option 'bindng'; its options: binding, seed" in str(
        error.value
    )
    assert "did you mean 'binding'?" in str(error.value)


# -- the ready-made checks --------------------------------------------------------------
def test_the_ready_made_checks_say_what_they_accept() -> None:
    assert choice("a", "b").accepts == "one of 'a', 'b'"
    assert number(0).accepts == "a number, at least 0"
    assert number(0, 19, whole=True).accepts == "a whole number, at least 0 and at most 19"
    assert text().accepts == "text"


def test_a_text_number_is_taken_only_where_asked_for() -> None:
    assert number(0, text=True)("2.5") == 2.5
    assert number(0, whole=True, text=True)("3") == 3
    with pytest.raises(TypeError, match="expected a number, got str '3'"):
        number(0)("3")
    for refused in ("inf", "nan", "1e999", "-1"):
        with pytest.raises(ValueError):
            number(0, text=True)(refused)


def test_check_options_fills_in_defaults() -> None:
    specs = {"mode": Option("a", "the mode", choice("a", "b", ignore_case=True))}
    assert check_options("store", "x", specs, {}) == {"mode": "a"}
    assert check_options("store", "x", specs, {"mode": "B"}) == {"mode": "b"}


# -- troy plugins --describe -------------------------------------------------------------
def test_describe_a_scheduler_shows_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--describe", "round_robin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("round_robin: scheduler plugin (troy.schedulers)")
    assert "troy.plugins.schedulers.base.Scheduler" in out
    assert "seed  (scheduler_options; a whole number or none; default none)" in out


def test_describe_kind_and_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--describe", "store.file"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("file: store plugin (troy.stores)")
    assert "coordination plugin" not in out
    assert "URL schemes   file" in out
    assert "options       none" in out


def test_describe_redis_lists_its_url_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--describe", "redis"]) == 0
    out = capsys.readouterr().out
    assert "URL schemes   redis, rediss" in out
    for option in ("prefix", "retry", "password_file", "ssl_ca_certs", "ssl_certfile"):
        assert f"    {option}  (coordination URL query;" in out
    assert "retry  (coordination URL query; a number, at least 0; default 30)" in out


def test_describe_a_name_of_two_kinds_describes_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--describe", "file"]) == 0
    out = capsys.readouterr().out
    assert "file: store plugin" in out
    assert "file: coordination plugin" in out


@pytest.mark.parametrize(
    ("name", "complaint"),
    [
        ("no_such_plugin", "no plugin named 'no_such_plugin' is installed"),
        ("store.redis", "no plugin 'redis' in entry-point group 'troy.stores'"),
        ("engine.file", "no plugin named 'engine.file' is installed"),
    ],
)
def test_describe_an_unknown_name_is_one_line_and_exit_2(
    name: str, complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plugins", "--describe", name]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert complaint in captured.err
    assert "Traceback" not in captured.err
