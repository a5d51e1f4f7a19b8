"""`troy dashboard` over plain HTTP: its JSON, its token rule, and that it never writes.

A real run (a work-unit service and a local pilot, one unit failing with a
message on stderr) is served by the real uvicorn server on a free port and
read with urllib. The page in a real browser is tested in
test_dashboard_browser.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="troy[dashboard] is not installed")
pytest.importorskip("uvicorn", reason="troy[dashboard] is not installed")

from troy import PilotJobService, WorkUnitService
from troy.cli import dashboard, main
from troy.model.states import State
from troy.plugins.registry import open_coordination

FAILING = {
    "executable": "/bin/sh",
    "arguments": ["-c", "echo the-unit-said-boom >&2; exit 3"],
    "name": "failing",
}


def get(url: str, host: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_json(url: str) -> dict[str, Any]:
    status, body = get(url)
    assert status == 200, body
    data: dict[str, Any] = json.loads(body)
    return data


def run_units(services: tuple[PilotJobService, WorkUnitService]) -> str:
    """A finished run of three units, one failing; its pilot canceled; the pilot's id."""
    pilots, units = services
    pilot = pilots.create("fork://localhost", {"number_of_processes": 2})
    units.submit([{"executable": "/bin/true"}, {"executable": "/bin/true"}, FAILING])
    units.wait(timeout=60)
    pilots.cancel()
    pilot.wait(timeout=30)
    return str(pilot.id)


@pytest.fixture
def served(
    services: tuple[PilotJobService, WorkUnitService], coordination_url: str
) -> Iterator[tuple[str, str]]:
    """The dashboard of a finished run on a free loopback port: (its URL, the pilot id)."""
    pilot_id = run_units(services)
    coordination = open_coordination(coordination_url, serve=False)
    server, url = dashboard.open_dashboard(coordination, None, "127.0.0.1", 0)
    server.start()
    yield url, pilot_id
    server.stop()
    coordination.close()


def test_snapshot_shows_pilots_counts_units_and_the_failed_units_stderr(
    served: tuple[str, str], services: tuple[PilotJobService, WorkUnitService]
) -> None:
    url, pilot_id = served
    data = get_json(url + "api/snapshot")
    units_id = services[1].id
    assert data["service"]["id"] == units_id  # the newest work-unit service by default
    assert {s["id"] for s in data["services"]} >= {units_id, services[0].id}
    (pilot,) = data["pilots"]
    assert pilot["id"] == pilot_id
    assert pilot["resource"] == "fork://localhost"
    assert pilot["slots"] == 2 and pilot["busy"] == 0 and pilot["free"] == 2
    assert pilot["heartbeat_age"] is not None and pilot["heartbeat_age"] >= 0
    assert data["counts"] == {"Done": 2, "Failed": 1}
    assert data["rates"]["finished"] == 3
    (failed,) = data["failed"]
    assert failed["name"] == "failing"
    assert failed["stderr"] == "the-unit-said-boom\n"
    assert failed["path"].endswith("/stderr")
    assert failed["host"]  # where it ran, as its agent said
    rows = {u["name"] or u["id"]: u for u in data["units"]}
    assert rows["failing"]["state"] == "Failed"
    assert rows["failing"]["exit_code"] == 3
    assert "exit code 3" in rows["failing"]["detail"]
    assert all(u["wait"] is not None and u["run"] is not None for u in data["units"])
    assert data["units_matching"] == 3
    only_failed = get_json(url + "api/snapshot?state=Failed")
    assert [u["name"] for u in only_failed["units"]] == ["failing"]
    assert only_failed["units_matching"] == 1
    assert only_failed["counts"] == data["counts"]  # the filter is the table's only
    bars = data["timeline"]["bars"]
    assert sorted(b["state"] for b in bars) == ["Done", "Done", "Failed"]
    assert {b["row"] for b in bars} <= {0, 1}  # two slots: two rows
    assert data["timeline"]["bars_total"] == 3
    assert len(data["utilisation"]["buckets"]) == 40


def test_snapshot_of_a_named_service_and_of_a_missing_one(
    served: tuple[str, str], services: tuple[PilotJobService, WorkUnitService]
) -> None:
    url, _ = served
    pilots_id = services[0].id
    data = get_json(url + f"api/snapshot?service={pilots_id}")
    assert data["service"] == {
        "id": pilots_id,
        "kind": "pilotjob",
        "created": pytest.approx(data["service"]["created"]),
    }
    assert data["pilots"][0]["busy"] is None  # a pilot-job service knows no units
    status, body = get(url + "api/snapshot?service=wus-nonesuch")
    assert status == 404
    assert "wus-nonesuch" in json.loads(body)["error"]


def test_the_page_is_self_contained(served: tuple[str, str]) -> None:
    url, _ = served
    status, body = get(url)
    assert status == 200
    page = body.decode()
    assert "api/snapshot" in page
    # No CDN, nothing loaded from outside: the one URL is SVG's namespace name.
    assert re.findall(r"https?://[^\s\"')]*", page) == ["http://www.w3.org/2000/svg"]
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    assert "innerHTML" not in page  # values from the run go in as text, never as HTML


def test_on_loopback_a_request_for_another_host_name_is_refused(served: tuple[str, str]) -> None:
    """A page elsewhere that rebinds its name to 127.0.0.1 still cannot read the dashboard."""
    url, _ = served
    assert get(url + "api/snapshot", host="evil.example")[0] == 403
    assert get(url, host="evil.example")[0] == 403
    assert get(url + "api/snapshot", host="localhost")[0] == 200


def test_bound_elsewhere_every_request_needs_the_printed_token(
    services: tuple[PilotJobService, WorkUnitService], coordination_url: str
) -> None:
    run_units(services)
    coordination = open_coordination(coordination_url, serve=False)
    # 127.0.0.2 is loopback on Linux but not the default address: the token rule applies.
    server, url = dashboard.open_dashboard(coordination, None, "127.0.0.2", 0)
    server.start()
    try:
        assert "?token=" in url
        base, token = url.split("?token=")
        assert len(token) >= 24
        assert get(base)[0] == 403
        assert get(base + "api/snapshot")[0] == 403
        assert get(base + "api/snapshot?token=wrong")[0] == 403
        assert get(base + "api/snapshot?token=" + token[:-1])[0] == 403
        assert get(url)[0] == 200
        assert get_json(base + "api/snapshot?token=" + token)["counts"]["Failed"] == 1
    finally:
        server.stop()
        coordination.close()


def tree(directory: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``directory``: size, mtime and content hash."""
    result = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root, name)
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            result[str(path.relative_to(directory))] = (stat.st_size, stat.st_mtime_ns, digest)
    return result


def test_serving_the_page_never_writes_to_the_coordination(
    services: tuple[PilotJobService, WorkUnitService], coordination_url: str, tmp_path: Path
) -> None:
    run_units(services)
    for service in reversed(services):  # a live service renews its lease: stop them first
        service.close()
    root = tmp_path / "coordination"
    before = tree(root)
    directories = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())
    coordination = open_coordination(coordination_url, serve=False)
    server, url = dashboard.open_dashboard(coordination, None, "127.0.0.1", 0)
    server.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            assert get(url)[0] == 200
            get_json(url + "api/snapshot")
            time.sleep(0.2)
    finally:
        server.stop()
        coordination.close()
    assert tree(root) == before
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()) == directories


def test_the_failed_units_stderr_comes_through_coordination_when_its_sandbox_is_gone(
    served: tuple[str, str], services: tuple[PilotJobService, WorkUnitService]
) -> None:
    """As for a pilot on another host: the agent recorded the stderr's end in coordination."""
    url, _ = served
    (failed,) = [u for u in services[1].list() if u.state == State.Failed]
    assert failed.sandbox and os.path.isdir(failed.sandbox)
    shutil.rmtree(failed.sandbox)
    (shown,) = get_json(url + "api/snapshot")["failed"]
    assert shown["stderr"] == "the-unit-said-boom\n"
    assert shown["note"] == "as its agent recorded it (exit code 3)"


def test_without_the_extra_troy_dashboard_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # `import uvicorn` raises ImportError
    assert main(["dashboard", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'troy[dashboard]'" in err
    assert "Traceback" not in err


def test_a_missing_service_is_an_error_before_anything_is_served(
    services: tuple[PilotJobService, WorkUnitService],
    coordination_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_units(services)
    code = main(["dashboard", "wus-nonesuch", "--port", "0", "--coordination", coordination_url])
    assert code == 2
    assert "no service 'wus-nonesuch'" in capsys.readouterr().err


@pytest.mark.redis
def test_a_run_coordinated_through_redis_with_pages_polling_at_once() -> None:
    """Requests run in uvicorn's thread pool: many at once share one read-only Redis
    connection; the password in the coordination URL never reaches the page."""
    from concurrent.futures import ThreadPoolExecutor

    from redis_fixtures import running_server

    with running_server({"--requirepass": "hunter2-dashboard"}) as server:
        url = server.url.replace("redis://", "redis://:hunter2-dashboard@") + "?prefix=dash"
        pilots, units = PilotJobService(coordination=url), WorkUnitService(coordination=url)
        try:
            units.add(pilots)
            run_units((pilots, units))
            coordination = open_coordination(url, serve=False)
            server_, address = dashboard.open_dashboard(coordination, None, "127.0.0.1", 0)
            server_.start()
            try:
                with ThreadPoolExecutor(8) as pool:
                    replies = list(pool.map(lambda _: get(address + "api/snapshot"), range(24)))
            finally:
                server_.stop()
                coordination.close()
        finally:
            units.close()
            pilots.close()
    assert {status for status, _ in replies} == {200}
    for _, body in replies:
        assert b"hunter2-dashboard" not in body
        data = json.loads(body)
        assert data["counts"] == {"Done": 2, "Failed": 1}
        assert data["coordination"].startswith("redis://127.0.0.1:")  # its public URL
        assert data["failed"][0]["stderr"] == "the-unit-said-boom\n"
