"""The condor backend: offline its mappings and errors with the real bindings; live the suite.

No HTCondor daemon can run on the machines this project is developed and tested
on (the ``htcondor`` wheel carries only the ``htcondor2``/``classad2`` bindings,
and Debian has no HTCondor), so:

* the offline tier checks, with the real bindings and no daemon, what the
  backend makes: the submit description (every key; ``htcondor2.Submit``
  takes it and gives back the same values, macros expanded as HTCondor
  does), the arguments and environment as HTCondor splits them (a port of
  ``split_args`` in HTCondor's condor_arglist.cpp, checked against the
  examples of the condor_submit manual), the bootstrap inside them, the
  states of real ``classad2.ClassAd`` job ads, and the errors of a launch
  when no schedd or collector answers (``htcondor2`` really fails here).
  The schedd calls of state/cancel run against a stand-in schedd object
  (``FakeSchedd``); it checks troy's logic around them, not HTCondor.
* the live tier is the backend conformance suite, run when
  ``TROY_TEST_CONDOR_URL`` names a schedd (``condor://host[:port]``, with the
  pool's ``CONDOR_CONFIG``). Without it the suite skips, saying how to run
  it; that skip stands even under ``TROY_REQUIRE_SERVICES=1``, because no
  schedd can be started here.
"""

from __future__ import annotations

import base64
import importlib.metadata
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from troy.model.description import PilotJobDescription
from troy.model.errors import BackendError
from troy.model.states import PILOTJOB_TYPE, PILOTJOB_TYPE_PLUGIN, State
from troy.plugins.backends import bootstrap
from troy.plugins.backends.base import PilotLaunch
from troy.plugins.backends.condor import CANCEL_REASON, JOB_PROJECTION, CondorBackend
from troy.plugins.backends.condor_submit import (
    classad_string,
    job_state,
    parse_condor_url,
    pick_schedd,
    quote_arguments,
    quote_environment,
    submit_description,
)
from troy.testing.backends import BackendSuite

try:
    import classad2
    import htcondor2
except ImportError:  # the offline tests that need the bindings skip, saying so
    htcondor2 = classad2 = None

NO_BINDINGS = "the HTCondor bindings are not installed (pip install 'troy[condor]')"
LIVE_SKIP = (
    "no HTCondor schedd here: set TROY_TEST_CONDOR_URL=condor://host[:port] (and the pool's"
    " CONDOR_CONFIG) to run the live backend suite"
)
AGENT = [sys.executable, "-m", "troy.agent", "--coordination", "file:///c", "--pilot", "p-1"]


@pytest.fixture
def bindings() -> Any:
    if htcondor2 is None:
        pytest.skip(NO_BINDINGS)
    return htcondor2


def launch_of(
    description: dict[str, Any],
    environment: dict[str, str] | None = None,
    agent: list[str] = AGENT,
    directory: str = "/scratch/p-1",
) -> PilotLaunch:
    return PilotLaunch(
        "p-1", "condor://", PilotJobDescription(description), directory, agent, environment or {}
    )


# -- HTCondor's own reading of arguments and environments ------------------------------------
def condor_split(value: str) -> list[str]:
    """What HTCondor makes of a new-syntax (V2 quoted) value: its words.

    A port of V2QuotedToV2Raw and split_args in HTCondor's
    src/condor_utils/condor_arglist.cpp: outer double quotes, ``""`` for a
    double quote; words split at blanks; single quotes group, ``''`` inside them
    is a single quote; ``''`` alone is an empty word.
    """
    assert value.startswith('"') and value.endswith('"'), value
    raw = value[1:-1]
    assert '"' not in raw.replace('""', ""), f"lone double quote in {value!r}"
    raw = raw.replace('""', '"')
    words: list[str] = []
    word, in_word, i = "", False, 0
    while i < len(raw):
        char = raw[i]
        if char == "'":
            in_word = True
            i += 1
            while True:
                assert i < len(raw), f"unbalanced quote in {value!r}"
                if raw[i] == "'":
                    if raw[i + 1 : i + 2] == "'":
                        word += "'"
                        i += 2
                        continue
                    break
                word += raw[i]
                i += 1
            i += 1
        elif char in " \t":
            if in_word:
                words.append(word)
                word, in_word = "", False
            i += 1
        else:
            word += char
            in_word = True
            i += 1
    if in_word:
        words.append(word)
    return words


@pytest.mark.parametrize(
    ("value", "words"),
    [  # the examples of the condor_submit manual, "arguments" and "environment"
        ('"3 simple arguments"', ["3", "simple", "arguments"]),
        ("\"one 'two with spaces' 3\"", ["one", "two with spaces", "3"]),
        (
            "\"one \"\"two\"\" 'spacey ''quoted'' argument'\"",
            ["one", '"two"', "spacey 'quoted' argument"],
        ),
        (
            "\"one=1 two=\"\"2\"\" three='spacey ''quoted'' value'\"",
            ["one=1", 'two="2"', "three=spacey 'quoted' value"],
        ),
    ],
)
def test_the_port_of_split_args_reads_the_manuals_examples(value: str, words: list[str]) -> None:
    assert condor_split(value) == words


@pytest.mark.parametrize(
    "arguments",
    [
        ["-c", 'echo it\'s "quoted"', "", "two  spaces", "tab\there", "'", '"'],
        ["plain", "a=b", "x'y", "--flag=has space"],
        [],
    ],
)
def test_arguments_reach_the_job_as_given(arguments: list[str]) -> None:
    assert condor_split(quote_arguments(arguments)) == arguments


def test_environment_reaches_the_job_as_given() -> None:
    environment = {"ONE": "1", "TWO": '"2"', "THREE": "spacey 'quoted' value", "EMPTY": ""}
    words = condor_split(quote_environment(environment))
    assert dict(word.split("=", 1) for word in words) == environment


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("arguments", lambda: quote_arguments(["a\nb"])),
        ("environment", lambda: quote_environment({"A": "x\ny"})),
        ("environment.1BAD", lambda: quote_environment({"1BAD": "x"})),
        ("arguments", lambda: quote_arguments(["$$(Memory)"])),
    ],
)
def test_what_the_submit_language_cannot_carry_is_refused_naming_the_field(
    field: str, call: Any
) -> None:
    with pytest.raises(BackendError, match=rf"^{field}: "):
        call()


def test_classad_strings_read_back_with_classad2(bindings: Any) -> None:
    text = 'a "quoted" back\\slash\tand tab'
    assert classad2.unquote(classad_string(text, "f")) == text
    assert classad_string(text, "f") == classad2.quote(text)


# -- URLs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("condor://", (None, None, None, "vanilla", None)),
        ("condor:///", (None, None, None, "vanilla", None)),
        (
            "condor://cm.example.org",
            ("cm.example.org:9618", "cm.example.org", None, "vanilla", None),
        ),
        ("condor://cm:9619?schedd=ap1", ("cm:9619", "cm", "ap1", "vanilla", None)),
        (
            "condor://cm?grid_resource=batch+slurm",
            ("cm:9618", "cm", None, "grid", "batch slurm"),
        ),
        (
            "condor://?universe=GRID&grid_resource=condor%20ce.example.org%20ce.example.org:9619",
            (None, None, None, "grid", "condor ce.example.org ce.example.org:9619"),
        ),
    ],
)
def test_condor_urls_name_collector_schedd_and_universe(
    url: str, expected: tuple[Any, ...]
) -> None:
    target = parse_condor_url(url)
    assert (
        target.collector,
        target.host,
        target.schedd,
        target.universe,
        target.grid_resource,
    ) == expected


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("condor://cm?queue=x", "queue"),
        ("condor://cm?universe=local", "universe"),
        ("condor://cm?universe=grid", "grid_resource"),
        ("condor://cm?universe=vanilla&grid_resource=batch+pbs", "grid_resource"),
        ("condor://?schedd=ap1", "schedd"),
        ("condor://cm?schedd=", "schedd"),
    ],
)
def test_bad_condor_urls_are_refused_naming_the_parameter(url: str, field: str) -> None:
    with pytest.raises(BackendError, match=rf"^{field}: "):
        CondorBackend(url)


def test_other_schemes_and_paths_are_refused() -> None:
    with pytest.raises(BackendError, match="condor://"):
        CondorBackend("slurm://host")
    with pytest.raises(BackendError, match="no path"):
        CondorBackend("condor://host/some/path")


# -- choosing the backend -------------------------------------------------------------------
def test_the_condor_type_and_scheme_name_this_backend() -> None:
    assert PILOTJOB_TYPE_PLUGIN[PILOTJOB_TYPE.CONDOR] == CondorBackend.name == "condor"
    assert CondorBackend.schemes == ("condor",)


@pytest.mark.parametrize(
    ("rm", "pj_type"),
    [("condor://x", None), ("condor://", "condor"), ("fork://localhost", PILOTJOB_TYPE.CONDOR)],
)
def test_the_registry_picks_the_condor_backend(rm: str, pj_type: Any) -> None:
    from troy.core.pilot_manager import backend_class

    names = {e.name for e in importlib.metadata.entry_points(group="troy.backends")}
    if "condor" not in names:
        pytest.skip(
            "the 'condor' entry point is not registered in troy.backends yet (pyproject.toml,"
            " then reinstall troy)"
        )
    assert backend_class(rm, pj_type) is CondorBackend


def test_a_pilot_spread_over_hosts_is_refused_before_launch() -> None:
    backend = CondorBackend("condor://")
    with pytest.raises(BackendError, match=r"^processes_per_host: .*one machine"):
        backend.check(PilotJobDescription({"number_of_processes": 8, "processes_per_host": 4}))
    backend.check(PilotJobDescription({"number_of_processes": 8, "processes_per_host": 8}))
    backend.check(PilotJobDescription({}))


# -- the submit description -------------------------------------------------------------------
def submitted(bindings: Any, description: dict[str, str]) -> dict[str, str]:
    """What htcondor2.Submit holds for ``description``, after a round trip through its text
    and with the submit language's macros expanded: the values the schedd gets."""
    first = bindings.Submit(description)
    again = bindings.Submit(str(first))
    assert dict(again.items()) == dict(first.items())
    return {key: again.expand(key) for key in again}


def as_submitted(description: dict[str, str]) -> dict[str, str]:
    """A description's keys as Submit names them (``+Name`` is ``MY.Name``)."""
    return {
        (f"MY.{key[1:]}" if key.startswith("+") else key): value
        for key, value in description.items()
    }


def test_a_full_pilot_description_maps_to_every_submit_key(bindings: Any) -> None:
    launch = launch_of(
        {
            "number_of_processes": 8,
            "wall_time_limit": 2.5,
            "total_physical_memory": 2048,
            "candidate_hosts": ["n1.example.org", "n2.example.org"],
            "cpu_architecture": "x86_64",
            "operating_system_type": "LINUX",
            "agent_python": "/opt/py/bin/python3",
            "queue": "ignored",
        },
        environment={"GREETING": "hello world", "PRICE": "$(Cluster) $ENV(HOME) $5 $(a b)"},
    )
    backend = CondorBackend("condor://")
    arguments, wheels = backend.bootstrap_arguments(launch)
    assert wheels == []
    description = submit_description(launch, arguments, backend.target, wheels)
    started = (
        "ifThenElse(isUndefined(JobCurrentStartDate), EnteredCurrentStatus, JobCurrentStartDate)"
    )
    assert set(description) == {
        "universe", "executable", "transfer_executable", "arguments", "initialdir", "output",
        "error", "log", "should_transfer_files", "when_to_transfer_output", "request_cpus",
        "batch_name", "+TroyPilotId", "request_memory", "+MaxRuntime", "periodic_remove",
        "+PeriodicRemoveReason", "requirements", "environment",
    }  # fmt: skip
    values = submitted(bindings, description)
    # Only the values with "$" change: HTCondor expands the $(DOLLAR) troy wrote for them.
    assert "$(DOLLAR)" in description["arguments"] and "$(DOLLAR)" in description["environment"]
    assert values == as_submitted(description) | {
        "arguments": description["arguments"].replace("$(DOLLAR)", "$"),
        "environment": description["environment"].replace("$(DOLLAR)", "$"),
    }
    assert values["universe"] == "vanilla"
    assert values["executable"] == "/bin/sh"
    assert values["transfer_executable"] == "false"
    assert condor_split(values["arguments"]) == arguments
    assert values["initialdir"] == "/scratch/p-1"
    assert (values["output"], values["error"], values["log"]) == (
        "agent.out",
        "agent.err",
        "agent.log",
    )
    assert values["should_transfer_files"] == "YES"
    assert values["when_to_transfer_output"] == "ON_EXIT"
    assert values["request_cpus"] == "8"
    assert values["request_memory"] == "2048"
    assert values["batch_name"] == "p-1"
    assert values["MY.TroyPilotId"] == '"p-1"'
    assert values["MY.MaxRuntime"] == "150"  # 2.5 min in seconds
    assert values["periodic_remove"] == f"(JobStatus == 2) && (time() - {started} > MaxRuntime)"
    assert values["MY.PeriodicRemoveReason"] == '"troy: wall time limit of 2.5 min reached"'
    assert values["requirements"] == (
        '(TARGET.Machine == "n1.example.org" || TARGET.Machine == "n2.example.org")'
        ' && (TARGET.Arch == "x86_64") && (TARGET.OpSys == "LINUX")'
    )
    environment = dict(w.split("=", 1) for w in condor_split(values["environment"]))
    assert environment == launch.environment
    for expression in ("periodic_remove", "requirements"):
        classad2.ExprTree(values[expression])  # parses as a ClassAd expression


def test_a_minimal_pilot_asks_for_one_cpu_and_nothing_else(bindings: Any) -> None:
    launch = launch_of({"agent_python": "python3"})
    backend = CondorBackend("condor://")
    description = submit_description(launch, backend.bootstrap_arguments(launch)[0], backend.target)
    assert description["request_cpus"] == "1"
    for absent in (
        "request_memory", "+MaxRuntime", "periodic_remove", "+PeriodicRemoveReason",
        "requirements", "environment", "transfer_input_files", "grid_resource",
    ):  # fmt: skip
        assert absent not in description
    assert submitted(bindings, description)["request_cpus"] == "1"


def test_total_cpu_count_is_what_the_job_requests() -> None:
    launch = launch_of({"number_of_processes": 2, "total_cpu_count": 6, "agent_python": "p"})
    backend = CondorBackend("condor://")
    description = submit_description(launch, ["-c", "true"], backend.target)
    assert description["request_cpus"] == "6"


def test_the_grid_universe_carries_its_grid_resource(bindings: Any) -> None:
    backend = CondorBackend("condor://ce.example.org?grid_resource=batch+slurm")
    launch = launch_of({"agent_python": "python3"})
    values = submitted(bindings, submit_description(launch, ["-c", "true"], backend.target))
    assert values["universe"] == "grid"
    assert values["grid_resource"] == "batch slurm"


def test_a_working_directory_with_blanks_and_dollars_reaches_the_submit_side(bindings: Any) -> None:
    directory = "/scratch/my pilots/$(USER)"
    launch = launch_of({"agent_python": "python3"}, directory=directory)
    backend = CondorBackend("condor://")
    description = submit_description(launch, backend.bootstrap_arguments(launch)[0], backend.target)
    values = submitted(bindings, description)
    assert values["initialdir"] == directory


# -- the bootstrap inside the arguments -------------------------------------------------------
def test_use_mode_runs_the_bootstrap_with_the_named_python(bindings: Any) -> None:
    launch = launch_of({"agent_python": "/opt/py/bin/python3"})
    backend = CondorBackend("condor://")
    arguments, wheels = backend.bootstrap_arguments(launch)
    values = submitted(bindings, submit_description(launch, arguments, backend.target, wheels))
    argv = condor_split(values["arguments"])
    assert argv[0] == "-c"
    encoded = argv[1].split()[2]
    assert argv[1] == f'eval "$(echo {encoded} | base64 -d)"'
    assert base64.b64decode(encoded).decode() == bootstrap.BOOTSTRAP_SCRIPT
    assert argv[2:5] == ["troy-bootstrap", "use", "/opt/py/bin/python3"]
    assert argv[5:] == AGENT[1:]
    assert "transfer_input_files" not in values


@pytest.mark.parametrize(
    ("python", "expected"),
    [
        (sys.executable, ("agent ran with ['-c', 'x y']", "")),
        ("/no/python", ("", "troy bootstrap: no Python at '/no/python'")),
    ],
)
def test_the_jobs_argv_runs_the_bootstrap(
    bindings: Any, tmp_path: Path, python: str, expected: tuple[str, str]
) -> None:
    """/bin/sh with the argv HTCondor makes of the submitted arguments, as a starter runs it."""
    agent = [sys.executable, "-c", "import sys; print('agent ran with', sys.argv)", "x y"]
    launch = launch_of({"agent_python": python}, agent=agent)
    backend = CondorBackend("condor://")
    arguments, wheels = backend.bootstrap_arguments(launch)
    values = submitted(bindings, submit_description(launch, arguments, backend.target, wheels))
    run = subprocess.run(
        [values["executable"], *condor_split(values["arguments"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    stdout, stderr = expected
    assert stdout in run.stdout and stderr in run.stderr, (run.stdout, run.stderr)
    assert (run.returncode == 0) == (stderr == "")


def test_ship_mode_transfers_the_wheel_into_the_jobs_directory(
    bindings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TROY_AGENT_PYTHON", raising=False)
    agent = [*AGENT[:4], "redis://coord.example.org:6390", *AGENT[5:]]
    launch = launch_of({}, agent=agent)
    backend = CondorBackend("condor://")
    arguments, wheels = backend.bootstrap_arguments(launch)
    troy, plugins = bootstrap.troy_wheel(), bootstrap.plugin_wheels()
    assert wheels == [troy.path, *(plugin.path for plugin in plugins)]
    assert all(wheel.is_file() for wheel in wheels)
    values = submitted(bindings, submit_description(launch, arguments, backend.target, wheels))
    assert values["transfer_input_files"] == ",".join(str(wheel) for wheel in wheels)
    argv = condor_split(values["arguments"])
    assert base64.b64decode(argv[1].split()[2]).decode() == bootstrap.BOOTSTRAP_SCRIPT
    digest = bootstrap.venv_digest(troy, plugins)
    assert argv[2:9] == [
        "troy-bootstrap",
        "ship",
        "python3",
        f"/scratch/p-1/.troy/venv-{digest}",
        f"./{troy.path.name}",
        "[redis]",
        ",".join(f"./{plugin.path.name}" for plugin in plugins),
    ]
    assert argv[9:] == agent[1:]


def test_ship_mode_keeps_an_empty_extras_argument(
    bindings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With file:// coordination the extras are "": the job must still get that empty word."""
    monkeypatch.delenv("TROY_AGENT_PYTHON", raising=False)
    launch = launch_of({})
    backend = CondorBackend("condor://")
    arguments, wheels = backend.bootstrap_arguments(launch)
    values = submitted(bindings, submit_description(launch, arguments, backend.target, wheels))
    argv = condor_split(values["arguments"])
    assert argv[6:8] == [f"./{bootstrap.troy_wheel().path.name}", ""]
    assert argv[9:] == AGENT[1:]


# -- job states --------------------------------------------------------------------------------
def ad(**attributes: Any) -> Any:
    """A job's ClassAd, as a schedd's query returns it."""
    return classad2.ClassAd({"ClusterId": 17, "ProcId": 0, **attributes})


@pytest.mark.parametrize(
    ("status", "state", "detail"),
    [
        (1, State.Pending, "idle: waiting for a matching slot"),
        (2, State.Running, ""),
        (3, State.Canceled, "the agent job was removed: troy: pilot canceled"),
        (4, State.Failed, "agent job ended without the agent reporting its end (exit code 3)"),
        (5, State.Pending, "held: Error from slot1@n1: Failed to execute '/bin/sh'"),
        (6, State.Running, ""),
        (7, State.Pending, "suspended by HTCondor"),
    ],
)
def test_every_job_status_maps_to_a_pilot_state(
    bindings: Any, status: int, state: State, detail: str
) -> None:
    job = ad(
        JobStatus=status,
        HoldReason="Error from slot1@n1: Failed to execute '/bin/sh'",
        RemoveReason=CANCEL_REASON,
        ExitCode=3,
        ExitBySignal=False,
    )
    assert bindings.JobStatus(status)  # HTCondor's own numbering
    assert job_state(job) == (state, detail)


def test_a_removal_at_the_wall_time_is_an_end_not_a_cancel(bindings: Any) -> None:
    """The reason troy's periodic_remove gives is what tells the two apart."""
    backend = CondorBackend("condor://")
    launch = launch_of({"wall_time_limit": 1, "agent_python": "p"})
    reason = submit_description(launch, ["-c", "true"], backend.target)["+PeriodicRemoveReason"]
    job = classad2.parseOne(f"[ClusterId = 17; JobStatus = 3; RemoveReason = {reason}]")
    assert job_state(job) == (State.Done, "wall time limit of 1 min reached")
    user = classad2.parseOne('[JobStatus = 3; RemoveReason = "via condor_rm (by user alice)"]')
    assert job_state(user) == (
        State.Canceled,
        "the agent job was removed: via condor_rm (by user alice)",
    )


def test_a_status_troy_does_not_know_is_unknown(bindings: Any) -> None:
    assert job_state(classad2.parseOne("[JobStatus = undefined]"))[0] == State.Unknown
    assert job_state({"JobStatus": 9})[0] == State.Unknown


# -- finding the schedd --------------------------------------------------------------------
def test_the_schedd_on_the_urls_host_is_picked_else_the_only_one(bindings: Any) -> None:
    ap1 = classad2.ClassAd({"Name": "ap1.example.org", "Machine": "ap1.example.org"})
    ap2 = classad2.ClassAd({"Name": "ap2@ap1.example.org", "Machine": "ap1.example.org"})
    cm = classad2.ClassAd({"Name": "cm.example.org", "Machine": "cm.example.org"})
    assert pick_schedd([ap1, cm], "cm", "cm:9618") is cm
    assert pick_schedd([cm], "elsewhere", "x:9618") is cm
    with pytest.raises(BackendError, match=r"several schedds \(ap1.example.org, ap2@.*\?schedd="):
        pick_schedd([ap1, ap2, cm], "ap1.example.org", "cm:9618")
    with pytest.raises(BackendError, match="knows no schedd"):
        pick_schedd([], "cm", "cm:9618")


@pytest.fixture
def no_pool(bindings: Any, tmp_path: Path) -> Iterator[int]:
    """An HTCondor configuration without daemons: no local schedd, a collector port that is
    closed.  Yields that port.  (Also keeps a launch here from reaching a real pool.)"""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "condor_config"
    config.write_text(
        f"LOCAL_DIR = {tmp_path}\nLOG = {tmp_path}\nCOLLECTOR_HOST = 127.0.0.1:{port}\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONDOR_CONFIG", str(config))
        bindings.reload_config()
        CondorBackend._schedds.clear()
        yield port
    bindings.reload_config()
    CondorBackend._schedds.clear()


def test_launch_without_a_local_schedd_says_so(no_pool: int, tmp_path: Path) -> None:
    launch = launch_of({"agent_python": "python3"}, directory=str(tmp_path / "pilot"))
    with pytest.raises(BackendError) as raised:
        CondorBackend("condor://").launch(launch)
    message = str(raised.value)
    assert message.startswith("no HTCondor schedd reachable at condor:// (")
    assert "Unable to locate local daemon" in message
    assert "is condor_schedd running" in message and "CONDOR_CONFIG" in message


def test_launch_without_a_collector_says_so(no_pool: int, tmp_path: Path) -> None:
    launch = launch_of({"agent_python": "python3"}, directory=str(tmp_path / "pilot"))
    rm = f"condor://127.0.0.1:{no_pool}?schedd=ap1"
    with pytest.raises(BackendError) as raised:
        CondorBackend(rm).launch(launch)
    assert str(raised.value).startswith(
        f"no HTCondor collector reachable at 127.0.0.1:{no_pool} for {rm} ("
    )


# -- state and cancel around the schedd's calls -------------------------------------------------
class FakeSchedd:
    """Stands in for htcondor2.Schedd: a queue and a history of job ads, and the calls made."""

    def __init__(self, queue: list[Any], history: list[Any] | None = None) -> None:
        self.queue = queue
        self.history_ads = history or []
        self.calls: list[tuple[Any, ...]] = []

    def query(self, constraint: str, projection: list[str]) -> list[Any]:
        self.calls.append(("query", constraint, tuple(projection)))
        return list(self.queue)

    def history(self, constraint: str, projection: list[str], match: int) -> list[Any]:
        self.calls.append(("history", constraint, match))
        return list(self.history_ads)

    def act(self, action: Any, spec: str, reason: str) -> Any:
        self.calls.append(("act", action, spec, reason))
        if not self.queue:
            raise htcondor2.HTCondorException("no such job")
        self.queue = [ad(JobStatus=3, RemoveReason=reason)]
        return classad2.ClassAd({"TotalSuccess": 1})


@pytest.fixture
def fake_schedd(bindings: Any) -> Iterator[Any]:
    def install(schedd: FakeSchedd) -> CondorBackend:
        CondorBackend._schedds[("condor://", None)] = (schedd, None)
        return CondorBackend("condor://")

    CondorBackend._states.clear()
    yield install
    CondorBackend._schedds.pop(("condor://", None), None)
    CondorBackend._states.clear()


HANDLE = {"cluster": 17, "schedd": None, "working_directory": "/nonexistent", "submitted": 0.0}


def test_state_asks_the_queue_then_the_history(fake_schedd: Any) -> None:
    schedd = FakeSchedd([ad(JobStatus=2)])
    assert fake_schedd(schedd).state(HANDLE) == (State.Running, "")
    assert schedd.calls == [("query", "ClusterId == 17 && ProcId == 0", tuple(JOB_PROJECTION))]
    CondorBackend._states.clear()
    gone = FakeSchedd([], [ad(JobStatus=4, ExitCode=0)])
    state, detail = fake_schedd(gone).state(HANDLE)
    assert (state, detail) == (
        State.Failed,
        "agent job ended without the agent reporting its end (exit code 0)",
    )
    assert [call[0] for call in gone.calls] == ["query", "history"]
    assert gone.calls[1] == ("history", "ClusterId == 17 && ProcId == 0", 1)


def test_a_job_in_neither_queue_nor_history_is_unknown(fake_schedd: Any) -> None:
    state, detail = fake_schedd(FakeSchedd([])).state(HANDLE)
    assert state == State.Unknown
    assert "neither the queue nor the history" in detail


def test_a_completed_job_fails_the_pilot_with_the_agents_stderr(
    fake_schedd: Any, tmp_path: Path
) -> None:
    (tmp_path / "agent.err").write_text(
        "troy bootstrap: no Python at '/opt/py' on n7 (agent_python)\n"
    )
    handle = {**HANDLE, "working_directory": str(tmp_path)}
    backend = fake_schedd(FakeSchedd([], [ad(JobStatus=4, ExitCode=1)]))
    assert backend.state(handle) == (
        State.Failed,
        "agent job ended without the agent reporting its end (exit code 1):"
        " troy bootstrap: no Python at '/opt/py' on n7 (agent_python)",
    )
    CondorBackend._states.clear()
    killed = FakeSchedd([ad(JobStatus=4, ExitBySignal=True, ExitSignal=9)])
    assert fake_schedd(killed).state(HANDLE) == (  # no agent.err in /nonexistent
        State.Failed,
        "agent job ended without the agent reporting its end (killed by signal 9)",
    )


def test_cancel_removes_a_waiting_job_at_once(fake_schedd: Any) -> None:
    schedd = FakeSchedd([ad(JobStatus=5, HoldReason="x")])
    fake_schedd(schedd).cancel(HANDLE)
    assert schedd.calls[-1] == (
        "act",
        htcondor2.JobAction.Remove,
        "ClusterId == 17",
        CANCEL_REASON,
    )
    CondorBackend._states.clear()
    assert fake_schedd(schedd).state(HANDLE) == (
        State.Canceled,
        f"the agent job was removed: {CANCEL_REASON}",
    )


@pytest.mark.parametrize("status", [3, 4, None])
def test_cancel_of_an_ended_job_does_nothing(fake_schedd: Any, status: int | None) -> None:
    schedd = FakeSchedd([] if status is None else [ad(JobStatus=status)])
    backend = fake_schedd(schedd)
    backend.cancel(HANDLE)
    backend.cancel(HANDLE)  # idempotent
    assert [call[0] for call in schedd.calls] == ["query", "query"]


def test_cancel_of_a_job_that_leaves_while_removed_is_no_error(fake_schedd: Any) -> None:
    class Leaving(FakeSchedd):
        def act(self, action: Any, spec: str, reason: str) -> Any:
            self.queue = []  # the agent ended it meanwhile
            return super().act(action, spec, reason)

    schedd = Leaving([ad(JobStatus=1)])
    fake_schedd(schedd).cancel(HANDLE)
    assert [call[0] for call in schedd.calls] == ["query", "act", "query"]


# -- live: the conformance suite against a real schedd -----------------------------------------
@pytest.mark.condor
class TestCondorBackend(BackendSuite):
    """The conformance suite against the schedd TROY_TEST_CONDOR_URL names.

    The agent runs where HTCondor places it, so the pilot's working directory
    (under pytest's tmp_path) and the file:// coordination must be on a
    filesystem the execute nodes share with this host, as on a personal
    HTCondor; the agent's Python is ``TROY_TEST_CONDOR_AGENT_PYTHON``, or this one.
    """

    @pytest.fixture
    def backend_rm(self) -> str:
        if htcondor2 is None:
            pytest.skip(NO_BINDINGS)
        url = os.environ.get("TROY_TEST_CONDOR_URL", "")
        if not url:
            pytest.skip(LIVE_SKIP)  # allowed under TROY_REQUIRE_SERVICES=1: see the docstring
        return url

    @pytest.fixture
    def backend_pj_type(self) -> str:
        return "condor"

    @pytest.fixture
    def pilot_description(self, tmp_path: Path) -> dict[str, Any]:
        return {
            "number_of_processes": 2,
            "working_directory": str(tmp_path / "pilot"),
            "agent_python": os.environ.get("TROY_TEST_CONDOR_AGENT_PYTHON", sys.executable),
            "wall_time_limit": 10,
        }


# -- shell and submit-language injection (issue 17) ----------------------------------------------
INJECTIONS = [
    "w$(touch PWNED)x",
    "w`touch PWNED`x",
    "w;touch PWNED;x",
    "w'$(touch PWNED)'x",
    'w"$(touch PWNED)"x',
    "w $(touch PWNED) *",
    'x") || (true',
    "w$ENV(HOME)x",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_hostile_values_reach_the_job_intact_and_run_nothing(
    bindings: Any, tmp_path: Path, value: str
) -> None:
    """Every value a user gives goes into the submit description (a hostile agent_python,
    working directory, environment and requirement strings); HTCondor reads back each as
    given, and /bin/sh running the job's argv creates nothing."""
    python = tmp_path / f"bin{value}" / "python"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    agent = [sys.executable, "-c", "import sys; print(sys.argv[1:])", "--pilot", value]
    description = {
        "agent_python": str(python),
        "candidate_hosts": [value],
        "cpu_architecture": value,
        "operating_system_type": value,
    }
    launch = launch_of(description, {"V": value}, agent, directory=f"/scratch/{value}")
    backend = CondorBackend("condor://")
    arguments, wheels = backend.bootstrap_arguments(launch)
    values = submitted(bindings, submit_description(launch, arguments, backend.target, wheels))
    assert values["initialdir"] == f"/scratch/{value}"
    assert condor_split(values["environment"]) == [f"V={value}"]
    requirement = classad2.ExprTree(values["requirements"])
    machine = classad2.quote(value)
    assert str(requirement) == str(
        classad2.ExprTree(
            f"(TARGET.Machine == {machine}) && (TARGET.Arch == {machine})"
            f" && (TARGET.OpSys == {machine})"
        )
    )
    work = tmp_path / "work"
    work.mkdir()
    run = subprocess.run(
        [values["executable"], *condor_split(values["arguments"])],
        capture_output=True, text=True, cwd=work, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"{['--pilot', value]}\n"
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize("field", ["working_directory", "environment.V", "arguments"])
def test_a_newline_is_refused_naming_the_field(field: str) -> None:
    value = "w\ntouch PWNED"
    launch = launch_of(
        {"agent_python": "python3"},
        {"V": value} if field == "environment.V" else {},
        [*AGENT, value] if field == "arguments" else AGENT,
        directory=f"/scratch/{value}" if field == "working_directory" else "/scratch/p",
    )
    backend = CondorBackend("condor://")
    with pytest.raises(BackendError, match=rf"^{field.split('.')[0]}"):
        submit_description(launch, backend.bootstrap_arguments(launch)[0], backend.target)
