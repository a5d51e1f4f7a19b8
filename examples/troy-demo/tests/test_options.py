"""The `nice` backend's option, as troy checks and describes a third-party plugin's options."""

from pathlib import Path

import pytest
from troy_demo.backend import NiceBackend

import troy
from troy.cli import main
from troy.model.errors import BadDescription


def test_niceness_comes_from_the_url_as_a_whole_number() -> None:
    assert NiceBackend.check_options({}) == {"niceness": 10}
    assert NiceBackend.check_options({"niceness": "15"}) == {"niceness": 15}


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("fork://localhost?nicenes=5", "has no option 'nicenes'; its options: niceness; did you"),
        ("fork://localhost?niceness=20", "backend 'nice': expected at least 0 and at most 19"),
        ("fork://localhost?niceness=high", "backend 'nice': expected a whole number, got 'high'"),
    ],
)
def test_a_wrong_niceness_is_refused_before_a_pilot_exists(
    url: str, complaint: str, tmp_path: Path
) -> None:
    with troy.PilotJobService(coordination=str(tmp_path / "c")) as pilots:
        with pytest.raises(BadDescription) as error:
            pilots.create(url, {"number_of_processes": 1}, pj_type="nice")
        assert complaint in str(error.value)
        assert pilots.list() == []


def test_troy_plugins_describes_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--describe", "backend.nice"]) == 0
    out = capsys.readouterr().out
    assert "distribution  troy-demo" in out
    assert "niceness  (resource URL query; a whole number, at least 0 and at most 19;" in out


def test_the_niceness_of_the_url_is_what_the_units_run_with(tmp_path: Path) -> None:
    coordination = str(tmp_path / "c")
    with (
        troy.PilotJobService(coordination=coordination) as pilots,
        troy.WorkUnitService(coordination=coordination) as units,
    ):
        units.add(pilots)
        pilots.create(
            "fork://localhost?niceness=15",
            {"number_of_processes": 1, "working_directory": str(tmp_path / "pilot")},
            pj_type="nice",
        )
        [unit] = units.submit([{"executable": "/bin/sh", "arguments": ["-c", "nice"]}])
        units.wait(timeout=60)
        pilots.cancel()
    assert unit.state == troy.State.Done, unit.state_detail
    assert Path(unit.sandbox, "stdout").read_text().strip() == "15"
