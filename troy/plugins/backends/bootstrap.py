"""Getting a pilot's agent started on a host troy has never seen.

Two ways, chosen per pilot:

* **use**: a Python that already has troy (a shared filesystem, a site
  install) is named in the pilot description (``agent_python``) or in
  ``$TROY_AGENT_PYTHON``; the bootstrap checks that it exists and execs the
  agent with it.
* **ship** (the default): the backend copies a wheel of the troy that is
  running here into ``WORKDIR/.troy/`` and the bootstrap installs it, once per
  working directory and troy build, into a venv there
  (``WORKDIR/.troy/venv-HASH``); later pilots in the same directory reuse it.
  The venv's dependencies come from whatever index pip on the target is
  configured for (``PIP_INDEX_URL``, ``pip.conf``; ``--find-links`` for
  offline sites).  The wheels of the third-party plugin packages installed
  here that an agent may load (those registering coordination, stores,
  launchers or observers: `AGENT_GROUPS`) travel and are installed with it,
  so a pilot can use them remotely (`plugin_wheels`); their requirement on
  troy is dropped (the shipped troy serves it), their other requirements come
  from the index.

Whatever goes wrong before the agent runs is written to stderr, prefixed
``troy bootstrap:``, and the script exits non-zero: the backend reads the
agent's error file and fails the pilot with that text.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import os
import re
import threading
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from troy.model import config
from troy.model.errors import TroyError
from troy.model.private import private_mkdir

#: Where the bootstrap files live inside a pilot's working directory.
STAGING_DIRECTORY = ".troy"
#: The bootstrap script's name in STAGING_DIRECTORY.
SCRIPT_NAME = "bootstrap.sh"
#: A fixed timestamp for wheel members, so the same sources give the same wheel.
_EPOCH = (2020, 1, 1, 0, 0, 0)

BOOTSTRAP_SCRIPT = r"""#!/bin/sh
# troy agent bootstrap (written by troy; safe to delete, rewritten at each launch).
#   bootstrap.sh use  PYTHON                   AGENT-ARGUMENTS...
#   bootstrap.sh ship PYTHON VENV WHEEL EXTRAS PLUGIN-WHEELS AGENT-ARGUMENTS...
#   (PLUGIN-WHEELS: their paths separated by commas, or empty)
set -u
fail() { echo "troy bootstrap: $*" >&2; exit 1; }
where="$(hostname 2>/dev/null || echo this host)"
found() { [ -x "$1" ] || command -v "$1" >/dev/null 2>&1; }
mode=$1; python=$2; shift 2
case "$mode" in
use)
    found "$python" || fail "no Python at '$python' on $where (agent_python)"
    "$python" -c 'import troy.agent' 2>/dev/null ||
        fail "'$python' on $where has no troy ('import troy.agent' fails)"
    exec "$python" "$@"
    ;;
ship)
    venv=$1; wheel=$2; extras=$3; plugins=$4; shift 4
    if [ ! -e "$venv/.troy-ready" ]; then
        found "$python" || fail "no '$python' on $where to make a venv for troy"
        if command -v flock >/dev/null 2>&1; then
            # One bootstrap per directory installs; the others wait for it here.
            exec 9>"$venv.lock" && flock 9 || fail "cannot lock $venv.lock"
        fi
        if [ ! -e "$venv/.troy-ready" ]; then
            rm -rf "$venv"
            "$python" -m venv "$venv" >&2 || fail "'$python -m venv $venv' failed on $where"
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
                "$wheel$extras" >&2 || fail "pip could not install $wheel$extras on $where"
            # The plugin wheels: $plugins is their paths, separated by commas.
            saved_ifs=$IFS; IFS=','
            set -f
            for plugin in $plugins; do
                "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
                    "$plugin" >&2 || fail "pip could not install plugin wheel $plugin on $where"
            done
            set +f; IFS=$saved_ifs
            touch "$venv/.troy-ready"
        fi
        exec 9>&-
    fi
    exec "$venv/bin/python" "$@"
    ;;
*)
    fail "unknown mode '$mode'"
    ;;
esac
"""


@dataclass(frozen=True)
class Wheel:
    """A wheel of the running troy, built locally."""

    path: Path
    #: Short digest of its contents: names the venv it is installed into.
    digest: str


_wheel: Wheel | None = None
_wheel_lock = threading.Lock()


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _package_files(root: Path, name: str) -> list[tuple[str, bytes]]:
    """Every file of the package at ``root`` (no caches), as (name in the wheel, contents)."""
    if root.is_file():  # a top-level module, not a package
        return [(f"{name}{root.suffix}", root.read_bytes())]
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        files.append((f"{name}/{path.relative_to(root).as_posix()}", path.read_bytes()))
    return files


def _wheel_name(name: str) -> str:
    """A distribution name as wheel file names spell it (``troy-demo`` -> ``troy_demo``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _write_wheel(
    distribution: importlib.metadata.Distribution,
    members: list[tuple[str, bytes]],
    directory: Path,
    metadata: str,
) -> Wheel:
    """Add the dist-info to ``members`` and write the wheel (reproducibly) under ``directory``."""
    name = _wheel_name(distribution.metadata["Name"] or "unknown")
    version = distribution.version
    info = f"{name}-{version}.dist-info"
    members = [*members, (f"{info}/METADATA", metadata.encode())]
    entry_points = distribution.read_text("entry_points.txt")
    if entry_points:
        members.append((f"{info}/entry_points.txt", entry_points.encode()))
    members.append(
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: troy\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    )
    record = "".join(f"{item},{_record_hash(data)},{len(data)}\n" for item, data in members)
    record += f"{info}/RECORD,,\n"
    members.append((f"{info}/RECORD", record.encode()))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item, data in members:
            entry = zipfile.ZipInfo(item, _EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:12]
    target = directory / digest / f"{name}-{version}-py3-none-any.whl"
    if not target.exists():
        private_mkdir(target.parent)
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(data)
        partial.replace(target)
    return Wheel(target, digest)


def build_wheel(directory: Path) -> Wheel:
    """Write a pure-Python wheel of the running troy into ``directory``.

    It is made from the imported package and its installed metadata (so it also
    works from an editable install or a site without the sources), and it is
    reproducible: the same troy gives byte-identical wheels.
    """
    distribution = importlib.metadata.distribution("troy")
    # troy/plugins/backends/bootstrap.py -> the troy package directory
    members = _package_files(Path(__file__).resolve().parents[2], "troy")
    metadata = distribution.read_text("METADATA") or (
        f"Metadata-Version: 2.1\nName: troy\nVersion: {distribution.version}\n"
    )
    return _write_wheel(distribution, members, directory, metadata)


def troy_wheel() -> Wheel:
    """The wheel of the running troy, built once per process into the troy home."""
    global _wheel
    with _wheel_lock:
        if _wheel is None or not _wheel.path.exists():
            _wheel = build_wheel(config.troy_home() / "wheels")
        return _wheel


#: Entry-point groups of the plugins an agent may load (its coordination, the
#: stores it stages with, its launcher, observers): their packages are shipped.
AGENT_GROUPS = ("troy.coordination", "troy.stores", "troy.launchers", "troy.observers")


class ShipError(TroyError):
    """A plugin package to ship with the agent could not be made into a wheel."""


def plugin_distributions() -> list[importlib.metadata.Distribution]:
    """The installed distributions, other than troy, that register agent-side plugins."""
    found: dict[str, importlib.metadata.Distribution] = {}
    for group in AGENT_GROUPS:
        for entry_point in importlib.metadata.entry_points(group=group):
            dist = entry_point.dist
            name = (dist.metadata["Name"] or "") if dist is not None else ""
            if dist is not None and _wheel_name(name) not in ("troy", ""):
                found.setdefault(_wheel_name(name), dist)
    return [found[name] for name in sorted(found)]


def build_plugin_wheel(distribution: importlib.metadata.Distribution, directory: Path) -> Wheel:
    """A wheel of an installed plugin package, from its imported top-level packages.

    Like troy's own wheel it works from an editable install; its requirement on
    troy is left out (the shipped troy serves it), its other requirements stay.
    """
    name = distribution.metadata["Name"] or "unknown"
    tops = (distribution.read_text("top_level.txt") or "").split()
    if not tops:
        tops = sorted({ep.value.split(":")[0].split(".")[0] for ep in distribution.entry_points})
    members: list[tuple[str, bytes]] = []
    for top in tops:
        try:
            module = importlib.import_module(top)
        except ImportError as exc:
            why = f"cannot ship plugin package {name}: import {top} failed: {exc}"
            raise ShipError(why) from exc
        paths = list(getattr(module, "__path__", []))
        root = Path(paths[0]) if paths else Path(module.__file__ or "")
        if not root.exists():
            raise ShipError(f"cannot ship plugin package {name}: no files found for {top}")
        members += _package_files(root, top)
    metadata = "\n".join(
        line
        for line in (distribution.read_text("METADATA") or "").splitlines()
        if not re.match(r"Requires-Dist:\s*troy\b(?![-_.\w])", line)
    )
    return _write_wheel(distribution, members, directory, metadata + "\n")


_plugins: tuple[Wheel, ...] | None = None


def plugin_wheels() -> tuple[Wheel, ...]:
    """The wheels of the plugin packages to ship with the agent, built once per process."""
    global _plugins
    with _wheel_lock:
        if _plugins is None or not all(wheel.path.exists() for wheel in _plugins):
            directory = config.troy_home() / "wheels"
            _plugins = tuple(build_plugin_wheel(d, directory) for d in plugin_distributions())
        return _plugins


def agent_python(description_value: str | None) -> str | None:
    """The Python to run the agent with on the target, or None to ship troy."""
    return description_value or os.environ.get("TROY_AGENT_PYTHON") or None


def extras_for(coordination_url: str) -> str:
    """The pip extras the agent needs for a coordination URL (``[redis]``, or "")."""
    scheme = coordination_url.split(":", 1)[0].lower()
    if scheme in ("redis", "rediss"):
        return "[redis]"
    if scheme == "tcp":  # the zmq plugin's broker address
        return "[zmq]"
    return ""


def _shell_head() -> list[str]:
    """``-c SCRIPT troy-bootstrap``: /bin/sh runs BOOTSTRAP_SCRIPT, named troy-bootstrap ($0)."""
    # The script travels base64-encoded in the command line: no file to stage, no quoting.
    encoded = base64.b64encode(BOOTSTRAP_SCRIPT.encode()).decode()
    return ["-c", f'eval "$(echo {encoded} | base64 -d)"', "troy-bootstrap"]


def use_arguments(python: str, agent_command: Sequence[str]) -> list[str]:
    """Arguments for ``/bin/sh`` that exec the agent with ``python`` on the target (use mode).

    ``agent_command`` is the PilotLaunch's argv; its first item (this host's
    Python) is replaced by ``python``.
    """
    return [*_shell_head(), "use", python, *agent_command[1:]]


def venv_digest(wheel: Wheel, plugins: Sequence[Wheel] = ()) -> str:
    """What names the venv on the target: troy's wheel, and the plugin wheels if any."""
    if not plugins:
        return wheel.digest
    joined = " ".join([wheel.digest, *(plugin.digest for plugin in plugins)])
    return hashlib.sha256(joined.encode()).hexdigest()[:12]


def ship_arguments(
    working_directory: str,
    wheel: Wheel,
    wheel_path: str,
    agent_command: Sequence[str],
    plugins: Sequence[tuple[Wheel, str]] = (),
) -> list[str]:
    """Arguments for ``/bin/sh`` that install ``wheel`` and exec the agent with it (ship mode).

    ``wheel_path`` is where the target finds the wheel, ``plugins`` the plugin
    wheels with where the target finds each; the venv is
    ``WORKDIR/.troy/venv-DIGEST`` (`venv_digest`), with the extras the agent's
    coordination URL needs.
    """
    coordination = agent_command[list(agent_command).index("--coordination") + 1]
    digest = venv_digest(wheel, [plugin for plugin, _ in plugins])
    for _, where in plugins:
        if "," in where:
            raise ShipError(f"cannot ship a plugin wheel to a path with a comma: {where}")
    return [
        *_shell_head(),
        "ship",
        "python3",
        f"{working_directory}/{STAGING_DIRECTORY}/venv-{digest}",
        wheel_path,
        extras_for(coordination),
        ",".join(where for _, where in plugins),
        *agent_command[1:],
    ]
