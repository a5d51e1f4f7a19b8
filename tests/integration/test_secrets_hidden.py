"""A full run with a Redis password and S3 keys leaves neither anywhere a user or another
local user could see it: what the CLI prints, the files under TROY_HOME (records, run
files, pilot directories, agent logs, unit outputs), the Redis keyspace, ``ps`` and the
agent's /proc/PID/cmdline.

The Redis server is this module's own (``--requirepass``); S3 is scripts/s3-server.sh's
radosgw (skipped without it, failed under TROY_REQUIRE_SERVICES=1).  The access key id
is checked too: AWS does not count it as a secret, but troy withholds it with the secret
key (one without the other is of no use), so it must not show up either.
"""

from __future__ import annotations

import os
import secrets as token
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from redis_fixtures import RedisServer, running_server
from services import S3Endpoint, s3_endpoint

from troy.api.data_service import PilotDataService
from troy.api.services import PilotJobService, WorkUnitService
from troy.model.errors import CoordinationError
from troy.model.states import State
from troy.plugins import data_records

REPO = Path(__file__).resolve().parents[2]
PASSWORD = f"redis-pw-{token.token_hex(8)}"
#: A unit that lists the names (never the values) of its environment.
ENV_NAMES = "import os; print(' '.join(sorted(os.environ)))"


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[RedisServer]:
    with running_server({"--requirepass": PASSWORD}) as server:
        yield server


def secret_url(server: RedisServer, password: str = PASSWORD) -> str:
    return f"redis://:{password}@127.0.0.1:{server.port}/0?prefix=s{uuid.uuid4().hex[:8]}"


def leaks(texts: Mapping[str, str], *values: str) -> list[str]:
    """``where: value`` for each text that holds one of ``values``."""
    return [f"{where}: {v}" for where, text in texts.items() for v in values if v in text]


def files_under(root: Path) -> dict[str, str]:
    return {
        str(path): path.read_bytes().decode(errors="replace")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def keyspace(server: RedisServer) -> dict[str, str]:
    """Every key of the server and its value, whatever its type."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=server.port, password=PASSWORD)
    dump: dict[str, str] = {}
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            value: Any
            if kind == "string":
                value = client.get(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                value = client.xrange(key)
            else:
                value = kind
            dump[f"redis {key.decode()}"] = repr(value)
    finally:
        client.close()
    return dump


class ProcessWatch:
    """Samples ``ps -eo pid,args`` and each agent's /proc/PID/cmdline while a run goes on."""

    def __init__(self) -> None:
        self.samples: list[str] = []
        self.agents: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            table = subprocess.run(
                ["ps", "-eo", "pid,args"], capture_output=True, text=True, check=False
            ).stdout
            self.samples.append(table)
            for line in table.splitlines()[1:]:
                pid, _, args = line.strip().partition(" ")
                if "troy.agent" in args and int(pid) not in self.agents:
                    try:
                        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    self.agents[int(pid)] = cmdline.replace(b"\0", b" ").decode(errors="replace")

    def texts(self) -> dict[str, str]:
        shown = {f"ps sample {n}": text for n, text in enumerate(self.samples)}
        shown.update({f"/proc/{pid}/cmdline": text for pid, text in self.agents.items()})
        return shown


def troy(
    *args: str, home: Path, environment: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TROY_"))}
    env.update(TROY_HOME=str(home), **(environment or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "troy", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=180)
    return process.returncode, out + err


@pytest.fixture
def s3() -> S3Endpoint:
    return s3_endpoint()


def test_a_run_with_a_redis_password_and_s3_keys_shows_and_stores_neither(
    redis_with_password: RedisServer, s3: S3Endpoint, tmp_path: Path, troy_home: Path
) -> None:
    url = secret_url(redis_with_password)
    bucket = f"troy-secrets-{uuid.uuid4().hex[:10]}"
    source = tmp_path / "input.txt"
    source.write_text("staged from s3\n")
    # The data: explicit keys in the description, as BigJob users write it.
    with PilotDataService(coordination=url) as data:
        pilot_data = data.create_pilot({"service_url": f"s3://{bucket}/pd", **s3.options()})
        unit_url = data.submit_data_unit_to(pilot_data, {"file_urls": [str(source)]}).get_url()
    assert PASSWORD not in unit_url
    batch = tmp_path / "run.yaml"
    batch.write_text(
        "pilots:\n  - resource: fork://localhost\n    number_of_processes: 2\n"
        "units:\n"
        f"  - executable: /bin/cat\n    arguments: [input.txt]\n    input_data: ['{unit_url}']\n"
        f'  - executable: {sys.executable}\n    arguments: ["-c", "{ENV_NAMES}"]\n'
        "  - executable: /bin/sleep\n    arguments: ['2']\n"
    )
    # The run: the password in $TROY_COORDINATION, the S3 keys in boto3's standard chain.
    run_env = {
        "TROY_COORDINATION": url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
    }
    with ProcessWatch() as watch:
        code, shown = finished(troy("run", str(batch), home=troy_home, environment=run_env))
    assert code == 0, shown
    assert "3 units: 3 Done" in shown
    assert watch.agents, "no agent was seen while the run went on"
    outputs = {path.parent.name: path.read_text() for path in troy_home.rglob("stdout")}
    assert "staged from s3\n" in outputs.values(), shown
    names = next(text for text in outputs.values() if "TROY_PILOT_ID" in text).split()
    assert "TROY_AGENT_SECRETS" not in names

    # A resume needs the password again: without it a clear error, with it the run.
    code, refused = finished(troy("run", "--resume", str(batch), home=troy_home))
    assert code == 2 and "Traceback" not in refused, refused
    assert "--coordination" in refused and "password" in refused
    code, resumed = finished(
        troy("run", "--resume", str(batch), home=troy_home, environment=run_env)
    )
    assert code == 0 and "3 units: 3 Done" in resumed, resumed

    # Mistakes with the password in the URL.
    code, no_such = finished(troy("status", "wus-nosuch", "--coordination", url, home=troy_home))
    assert code == 2 and "no service 'wus-nosuch'" in no_such, no_such
    wrong = secret_url(redis_with_password, "wrong-password-4711")
    code, refused_login = finished(troy("status", "--coordination", wrong, home=troy_home))
    assert code == 2 and "Traceback" not in refused_login, refused_login

    texts = {
        "troy run": shown,
        "troy run --resume (refused)": refused,
        "troy run --resume": resumed,
        "troy status wus-nosuch": no_such,
        "troy status (wrong password)": refused_login,
        **files_under(troy_home),
        **keyspace(redis_with_password),
        **watch.texts(),
    }
    # What is searched holds what may leak: the run file, records, the agent's log.
    assert any(str(troy_home / "runs") in where for where in texts)
    assert any("pilotdata/" in where for where in texts)
    agent_logs = [text for where, text in texts.items() if where.endswith("agent.err")]
    # It says the keys were withheld and the store falls back on boto3's chain.
    assert any("own credential chain" in text for text in agent_logs)
    secret_values = (PASSWORD, "wrong-password-4711", s3.secret_key, s3.access_key)
    assert leaks(texts, *secret_values) == []
    # Nor in the form the agent is given them (base64 in its environment): nothing keeps it.
    assert leaks(texts, "TROY_AGENT_SECRETS") == []
    # The check finds a secret where there is one.
    (troy_home / "planted.txt").write_text(f"oops {s3.secret_key}")
    assert leaks(files_under(troy_home), *secret_values) == [
        f"{troy_home / 'planted.txt'}: {s3.secret_key}"
    ]


def test_explicit_s3_keys_reach_an_agent_started_by_the_same_process_only_through_its_environment(
    redis_with_password: RedisServer,
    s3: S3Endpoint,
    tmp_path: Path,
    troy_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = secret_url(redis_with_password)
    source = tmp_path / "input.txt"
    source.write_text("keys from the manager\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # so the agent has no other way to them
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    data = PilotDataService(coordination=url)
    pilots = PilotJobService(coordination=url)
    units = WorkUnitService(coordination=url)
    try:
        pilot_data = data.create_pilot(
            {"service_url": f"s3://troy-secrets-{uuid.uuid4().hex[:10]}/pd", **s3.options()}
        )
        unit_url = data.submit_data_unit_to(pilot_data, {"file_urls": [str(source)]}).get_url()
        units.add(pilots)
        with ProcessWatch() as watch:
            pilots.create("fork://localhost", {"number_of_processes": 1})
            unit = units.submit(
                {"executable": "/bin/cat", "arguments": ["input.txt"], "input_data": [unit_url]}
            )
            assert unit.wait(timeout=60) == State.Done, unit.state_detail
    finally:
        pilots.cancel()
        for service in (units, pilots, data):
            service.close()
    assert (Path(unit.sandbox) / "stdout").read_text() == "keys from the manager\n"
    assert watch.agents
    texts = {**files_under(troy_home), **keyspace(redis_with_password), **watch.texts()}
    assert leaks(texts, PASSWORD, s3.secret_key, s3.access_key) == []


def test_a_refused_password_is_in_no_message_nor_exception_chain(
    redis_with_password: RedisServer,
) -> None:
    import traceback

    wrong = secret_url(redis_with_password, "chained-wrong-password")
    with pytest.raises(CoordinationError) as caught:
        WorkUnitService(coordination=wrong)
    shown = "".join(traceback.format_exception(caught.value))
    assert "refused" in shown and "chained-wrong-password" not in shown
    assert "chained-wrong-password" not in repr(caught.value)


def test_units_do_not_inherit_the_agents_secrets(
    services: tuple[PilotJobService, WorkUnitService],
) -> None:
    # A Pilot-Data with explicit keys made here: the agent is given them in its environment.
    pilots, units = services
    data_records.keep_store_secrets("pd-inherit", {"secret_access_key": "inherit-test-secret-key"})
    try:
        pilots.create("fork://localhost", {"number_of_processes": 1})
        unit = units.submit({"executable": sys.executable, "arguments": ["-c", ENV_NAMES]})
        assert unit.wait(timeout=60) == State.Done, unit.state_detail
    finally:
        data_records._store_secrets.pop("pd-inherit", None)
    names = (Path(unit.sandbox) / "stdout").read_text().split()
    assert "TROY_PILOT_ID" in names and "TROY_AGENT_SECRETS" not in names
