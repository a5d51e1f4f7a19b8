"""Every place troy hands user data to a shell, tried with injections, run for real (issue 17).

Each test puts values such as ``$(touch PWNED)``, backticks, ``;``, newlines
and quotes where a user can (a path, an argument, a label), runs what troy
produces with the real ``/bin/sh`` (or the program the value is meant for),
and checks that no ``PWNED`` file appears and the value arrives intact, or
that troy refuses it naming the field.  The places:

* the bootstrap (troy.plugins.backends.bootstrap): ``use`` and ``ship``
  arguments for ``/bin/sh -c``, with hostile Python, working-directory,
  wheel, plugin-wheel and coordination values;
* the scripts of ``troy compare --real`` (troy.cli.real_run) with hostile
  machine and datacenter labels;
* the launchers (mpirun, srun) with a hostile host file, executable and
  arguments, started as the agent starts units;
* the saga backend's resource URL (radical.saga splits its ssh command line
  at blanks) and the ssh store's URL (ssh puts a host into ProxyCommand);
* the HTCondor submit description is in tests/unit/test_condor_backend.py,
  the ssh store's file names and root in tests/conformance/test_ssh_store.py,
  the saga job attributes in tests/unit/test_saga_mapping.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from troy.agent.launcher import prepare, start
from troy.agent.resources import Allocation
from troy.cli.real_run import PILOT_WRAPPER, UNIT_SCRIPT, UNIT_SECONDS
from troy.model.description import PilotJobDescription
from troy.model.errors import BadDescription, StoreError
from troy.plugins.backends import bootstrap
from troy.plugins.backends.saga_mapping import check_description
from troy.plugins.launchers.mpirun import MpirunLauncher
from troy.plugins.launchers.srun import SrunLauncher
from troy.plugins.stores.ssh import parse_ssh_url

#: What a shell would run if the value reached it unquoted (no "/": they go into file names).
INJECTIONS = [
    "w$(touch PWNED)x",
    "w`touch PWNED`x",
    "w;touch PWNED;x",
    "w\ntouch PWNED\nx",
    "w'$(touch PWNED)'x",
    'w"$(touch PWNED)"x',
    "w&&touch PWNED||x",
    "w|touch PWNED",
    "w $(touch PWNED) *",
    "-w",
]
#: Prints its arguments as JSON: what a program started with them receives.
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"


def pwned(*roots: Path) -> list[Path]:
    return [path for root in roots for path in root.rglob("PWNED")]


def run_sh(arguments: list[str], cwd: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", *arguments],
        cwd=cwd,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


def script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


# -- the bootstrap ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", INJECTIONS)
def test_the_bootstrap_in_use_mode_passes_a_hostile_python_and_arguments_intact(
    tmp_path: Path, value: str
) -> None:
    """agent_python names a Python in a directory and with a name full of shell characters."""
    python = script(
        tmp_path / f"bin{value}" / f"python{value}",
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n',
    )
    work = tmp_path / "work"
    work.mkdir()
    agent = [sys.executable, "-c", PRINT_ARGV, "--coordination", f"file:///c{value}", value]
    run = run_sh(bootstrap.use_arguments(str(python), agent), work)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == agent[3:]
    assert pwned(tmp_path) == []


#: A stand-in for ``python3 -m venv DIR``: DIR/bin/python records what pip is asked to install.
FAKE_PYTHON3 = """#!/bin/sh
[ "$1" = -m ] && [ "$2" = venv ] || exit 3
mkdir -p "$3/bin" && cp "$TEST_VENV_PYTHON" "$3/bin/python"
"""
FAKE_VENV_PYTHON = f"""#!/bin/sh
if [ "$1" = -m ] && [ "$2" = pip ]; then
    shift 2
    {shlex.quote(sys.executable)} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" \\
        >>"$TEST_PIP_LOG"
    exit 0
fi
exec {shlex.quote(sys.executable)} "$@"
"""


@pytest.mark.parametrize("value", INJECTIONS)
def test_the_bootstrap_in_ship_mode_takes_hostile_paths_literally(
    tmp_path: Path, value: str
) -> None:
    """Working directory, wheel and plugin-wheel paths and the coordination URL, all hostile;
    ``python3`` is a stand-in that makes a venv whose pip records what it installs."""
    fake = tmp_path / "fake"
    script(fake / "python3", FAKE_PYTHON3)
    venv_python = script(fake / "venv-python", FAKE_VENV_PYTHON)
    pip_log = tmp_path / "pip.log"
    directory = tmp_path / f"pilot{value}"
    (directory / bootstrap.STAGING_DIRECTORY).mkdir(parents=True)
    wheel = bootstrap.Wheel(tmp_path / "troy.whl", "0123456789ab")
    plugin = bootstrap.Wheel(tmp_path / "plugin.whl", "ba9876543210")
    wheel_at = str(directory / f"troy{value}.whl")
    plugin_at = str(directory / f"plugin{value}.whl")
    agent = [sys.executable, "-c", PRINT_ARGV, "--coordination", f"redis://h/{value}", value]
    arguments = bootstrap.ship_arguments(
        str(directory), wheel, wheel_at, agent, [(plugin, plugin_at)]
    )
    work = tmp_path / "work"
    work.mkdir()
    run = run_sh(
        arguments,
        work,
        PATH=f"{fake}:{os.environ['PATH']}",
        TEST_VENV_PYTHON=str(venv_python),
        TEST_PIP_LOG=str(pip_log),
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == agent[3:]
    installed = [json.loads(line)[-1] for line in pip_log.read_text().splitlines()]
    assert installed == [f"{wheel_at}[redis]", plugin_at]
    venv = (
        directory / bootstrap.STAGING_DIRECTORY / f"venv-{bootstrap.venv_digest(wheel, [plugin])}"
    )
    assert (venv / ".troy-ready").exists()
    assert pwned(tmp_path) == []


def test_the_bootstrap_says_which_python_is_missing_without_running_its_name(
    tmp_path: Path,
) -> None:
    value = "/no/py$(touch PWNED)`touch PWNED`;touch PWNED"
    run = run_sh(bootstrap.use_arguments(value, [sys.executable, "-c", "pass"]), tmp_path)
    assert run.returncode == 1
    assert f"troy bootstrap: no Python at '{value}'" in run.stderr
    assert pwned(tmp_path) == []


# -- troy compare --real ---------------------------------------------------------------------
@pytest.mark.parametrize("value", INJECTIONS)
def test_the_real_run_scripts_take_hostile_labels_literally(tmp_path: Path, value: str) -> None:
    """The pilot wrapper exports the labels; the unit script compares them in awk."""
    shown = "import os; print(os.environ['TROY_SIM_MACHINE'], os.environ['TROY_SIM_DATACENTER'])"
    pilot = run_sh(
        ["-c", PILOT_WRAPPER, "troy-sim-pilot", "0", "1.0", value, value + "dc",
         sys.executable, "-c", shown],
        tmp_path,
    )  # fmt: skip
    assert pilot.returncode == 0, pilot.stderr
    assert pilot.stdout == f"{value} {value}dc\n"
    unit = run_sh(
        ["-c", UNIT_SCRIPT, "troy-sim-unit", UNIT_SECONDS, "0.01", value, value, "0.01"],
        tmp_path,
        TROY_SIM_MACHINE=value,
        TROY_SIM_DATACENTER=value,
        TROY_SIM_SPEED="1",
    )
    assert unit.returncode == 0, unit.stderr
    assert pwned(tmp_path) == []


# -- the launchers ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", INJECTIONS)
def test_the_launchers_pass_a_hostile_hostfile_executable_and_arguments_as_single_words(
    tmp_path: Path, value: str
) -> None:
    """mpirun and srun get argv lists, started without a shell, as the agent starts a unit."""
    launchers = tmp_path / "bin"
    for name in ("mpirun", "srun"):
        script(
            launchers / name,
            f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(PRINT_ARGV)} "$@"\n',
        )
    executable = script(tmp_path / f"prog{value}", "#!/bin/sh\n")
    hostfile = tmp_path / f"hosts{value}"
    hostfile.write_text("a\nb\n")
    unit = {
        "executable": str(executable),
        "arguments": [value, "$X", value],
        "environment": {"X": value},
        "spmd_variation": "mpi",
        "number_of_processes": 2,
        "working_directory": f"sandbox{value}".replace("\n", "_"),
    }
    pbs = Allocation("pbs", (("a", 4), ("b", 4)), "3", str(hostfile))
    slurm = Allocation("slurm", (("a", 4), ("b", 4)), "4")
    for launcher, allocation in ((MpirunLauncher(), pbs), (SrunLauncher(), slurm)):
        prepared = prepare(
            "u1", unit, str(tmp_path / "pilot"), {"PATH": str(launchers)}, allocation,
            launcher=launcher,
        )  # fmt: skip
        process = start(prepared)
        assert process.wait(timeout=60) == 0
        argv = json.loads(Path(prepared.stdout).read_text())
        assert argv[-3:] == [value, value, value], argv
        assert argv[-4] == str(executable)
        if launcher.name == "mpirun":
            assert argv[argv.index("--hostfile") + 1] == str(hostfile)
        Path(prepared.stdout).unlink()
    assert pwned(tmp_path) == []


# -- host and user names that reach ssh ------------------------------------------------------
#: ssh options and shell characters in a host or user name (a blank made an ssh option).
HOSTILE_HOSTS = ["x -oProxyCommand=touch", "a|b", *INJECTIONS]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_the_saga_backend_refuses_a_resource_host_a_shell_or_ssh_would_read(host: str) -> None:
    """radical.saga splits ``ssh ... HOST`` at blanks (an ssh option) and ssh hands the
    host to a ProxyCommand shell: only host-name characters may pass."""
    for rm in (f"ssh://{host}/tmp", f"slurm+ssh://{host}/", f"ssh://{host}@h/tmp"):
        with pytest.raises(BadDescription, match=r"^resource: "):
            check_description(rm, PilotJobDescription({"queue": "q"}))


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_the_ssh_store_refuses_a_host_or_user_ssh_would_hand_to_a_shell(host: str) -> None:
    for url in (f"ssh://{host}/tmp/pd", f"ssh://{host}@localhost/tmp/pd"):
        with pytest.raises(StoreError, match="host or user"):
            parse_ssh_url(url)


@pytest.mark.parametrize(
    "rm", ["ssh://localhost/tmp", "ssh://me@node-1.example.org:2222/x", "slurm+ssh://[::1]/"]
)
def test_ordinary_hosts_and_users_pass(rm: str) -> None:
    check_description(rm, PilotJobDescription({"queue": "q"}))
    parse_ssh_url(rm.replace("slurm+ssh", "ssh") + "pd")
