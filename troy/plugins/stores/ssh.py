"""The ``ssh`` store: data units as directories of flat files on a host reached by ssh.

``ssh://[user@]host[:port]/absolute/path`` (BigJob's form) keeps unit ``du-1`` in
``/absolute/path/du-1/`` on that host. The store runs the OpenSSH client found on
PATH, so the user's ``~/.ssh/config`` (aliases, jump hosts, keys, multiplexing)
applies; every call adds ``-o BatchMode=yes`` (never a password prompt) and the
option ``userkey`` adds ``-i KEY -o IdentitiesOnly=yes``.

Each operation is one ssh command running a POSIX ``sh`` script with every path
quoted; files travel as a tar stream on that command's stdin or stdout. So a
batch of files is one round trip, names are taken literally (scp and sftp would
glob-expand ``*`` or ``[`` in remote paths), and every file ``get`` writes goes
through `writing_into`, after `safe_name`, never through a link. The remote host
needs ``sh``, ``tar``, ``mktemp`` and ``wc``.

As in the ``file`` store, a put lands in a staging directory beside the units and
is moved into place, and a delete renames the unit away before removing it; a
link inside a unit is listed, never followed (``get`` refuses it, ``size``
counts it as nothing).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shlex
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import IO, Any, ClassVar, NoReturn
from urllib.parse import quote, unquote, urlsplit

from troy.model.errors import StoreError
from troy.model.validators import ssh_name_problem
from troy.plugins.options import Option, text
from troy.plugins.stores.base import (
    Store,
    names_to_put,
    safe_name,
    safe_unit_id,
    writing_into,
)

# Exit status of the remote scripts when the unit is not there (ssh itself uses 255).
_NO_UNIT = 3
_CHUNK = 1024 * 1024
# Remote command lines stay under Linux's limit for one argument (128 KiB) with room.
_MAX_COMMAND = 64 * 1024


@dataclass(frozen=True)
class SshLocation:
    """Where an ``ssh://`` URL points: the login (user, host, port) and the root directory."""

    host: str
    root: str
    user: str | None = None
    port: int | None = None

    @property
    def destination(self) -> str:
        """``user@host`` (or ``host``) as ssh takes it."""
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def netloc(self) -> str:
        """The URL's ``[user@]host[:port]`` part."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        login = f"{quote(self.user, safe='')}@" if self.user else ""
        return f"{login}{host}" + (f":{self.port}" if self.port else "")


def parse_ssh_url(url: str) -> SshLocation:
    """The login and root directory of ``ssh://[user@]host[:port]/absolute/path``.

    StoreError for another scheme, a missing host or path, a password in the URL
    (the message does not repeat it) or a host or user that ssh would take for an
    option.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "ssh":
        raise StoreError(f"ssh store URL {url!r} must start with ssh://")
    if parts.password is not None:
        shown = parts._replace(netloc=f"{parts.username}:***@{parts.hostname}").geturl()
        raise StoreError(
            f"ssh store URL {shown!r} holds a password; ssh stores log in with keys "
            "(~/.ssh/config or the 'userkey' option)"
        )
    try:
        port = parts.port
    except ValueError:
        raise StoreError(f"ssh store URL {url!r} has an invalid port") from None
    host = parts.hostname or ""
    user = unquote(parts.username) if parts.username else None
    if not host:
        raise StoreError(f"ssh store URL {url!r} names no host: use ssh://[user@]host/path")
    problem = ssh_name_problem(host, user)
    if problem is not None:
        raise StoreError(f"ssh store URL {url!r:.200}: refused host or user: {problem}")
    root = unquote(parts.path).rstrip("/")
    if not root.startswith("/"):
        raise StoreError(
            f"ssh store URL {url!r} names no absolute directory: use ssh://host/absolute/path"
        )
    return SshLocation(host=host, root=root, user=user, port=port)


def _listing_script(unit_dir: str) -> str:
    """Shell script printing ``TYPE SIZE NAME\\0`` for the unit's files (f) and links (l)."""
    return f"""cd -- {shlex.quote(unit_dir)} 2>/dev/null || {{
    echo "no such directory: "{shlex.quote(unit_dir)} >&2; exit {_NO_UNIT}; }}
for f in * .[!.]* ..?*; do
    if [ -L "$f" ]; then printf 'l 0 %s\\0' "$f"
    elif [ -f "$f" ]; then printf 'f %s %s\\0' "$(wc -c <"$f")" "$f"
    fi
done"""


def parse_listing(output: bytes) -> dict[str, tuple[str, int]]:
    """``{name: (type, size)}`` from the listing script's output (type ``f`` or ``l``)."""
    entries: dict[str, tuple[str, int]] = {}
    for record in output.split(b"\0"):
        if not record:
            continue
        kind, _, rest = record.decode("utf-8", "surrogateescape").partition(" ")
        size, _, name = rest.lstrip(" ").partition(" ")
        try:
            entries[name] = (kind, int(size))
        except ValueError:
            raise StoreError(f"unexpected listing line from the ssh host: {record!r}") from None
    return entries


class SshStore(Store):
    """Keeps each data unit as a directory ``<root>/<unit_id>/`` on an ssh host."""

    name: ClassVar[str] = "ssh"
    schemes: ClassVar[tuple[str, ...]] = ("ssh",)
    capabilities: ClassVar[frozenset[str]] = frozenset({"glob"})
    option_specs: ClassVar[Mapping[str, Option]] = MappingProxyType(
        {"userkey": Option(None, "the private key ssh logs in with (-i KEY)", text())}
    )

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self.location = parse_ssh_url(url)
        userkey = self.options.get("userkey")
        self.userkey = os.path.expanduser(str(userkey)) if userkey else None

    # --- running ssh ---------------------------------------------------------------

    def _ssh_command(self, script: str) -> list[str]:
        options = ["-o", "BatchMode=yes"]
        if self.userkey:
            if not os.path.isfile(self.userkey):
                raise StoreError(f"ssh store {self.url}: userkey {self.userkey} is not a file")
            options += ["-i", self.userkey, "-o", "IdentitiesOnly=yes"]
        if self.location.port:
            options += ["-p", str(self.location.port)]
        # ``sh -c``: the script is POSIX sh whatever the login shell is.
        return ["ssh", *options, "--", self.location.destination, f"sh -c {shlex.quote(script)}"]

    @contextlib.contextmanager
    def _ssh(
        self, action: str, script: str, stdin: int | None = None, stdout: int | None = None
    ) -> Iterator[subprocess.Popen[bytes]]:
        """Run ``script`` on the host; StoreError with ssh's last line of stderr if it fails."""
        command = self._ssh_command(script)
        with tempfile.TemporaryFile() as stderr:
            try:
                process = subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=stderr)
            except OSError as exc:
                raise StoreError(
                    f"ssh store {self.url}: cannot run ssh to {action}: {exc.strerror or exc}"
                ) from exc
            try:
                yield process
            except BaseException:
                process.kill()
                process.wait()
                raise
            finally:
                for stream in (process.stdin, process.stdout):
                    if stream is not None:
                        with contextlib.suppress(OSError):
                            stream.close()
            status = process.wait()
            if status != 0:
                stderr.seek(0)
                self._fail(action, status, stderr.read())

    def _run(self, action: str, script: str) -> bytes:
        with self._ssh(action, script, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            output = proc.stdout.read()
        return output

    def _fail(self, action: str, status: int, stderr: bytes) -> NoReturn:
        lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"ssh exited with status {status}"
        if status == _NO_UNIT:
            raise StoreError(f"ssh store {self.url}: cannot {action}: no such data unit ({last})")
        raise StoreError(f"ssh store {self.url}: cannot {action}: {last}")

    # --- paths ---------------------------------------------------------------------

    def _unit_dir(self, unit_id: str) -> str:
        return f"{self.location.root}/{safe_unit_id(unit_id)}"

    def _entries(self, unit_id: str) -> dict[str, tuple[str, int]]:
        unit_dir = self._unit_dir(unit_id)
        output = self._run(f"list data unit {unit_id!r}", _listing_script(unit_dir))
        return parse_listing(output)

    # --- the contract --------------------------------------------------------------

    def put(self, unit_id: str, paths: Sequence[str]) -> list[str]:
        """Copy local files into data unit ``unit_id`` (created if new); return their names.

        One ssh command: the files go as a tar stream into a staging directory on
        the host, then are moved into the unit, so a put that fails half way
        leaves the unit as it was.
        """
        unit_dir = self._unit_dir(unit_id)
        names = names_to_put(unit_id, paths)
        root, unit = shlex.quote(self.location.root), shlex.quote(unit_dir)
        script = f"""set -e
mkdir -p -- {root}
staging=$(mktemp -d {root}/.troy-put-XXXXXXXX)
trap 'rm -rf -- "$staging"' EXIT
tar -x -f - --no-same-owner -C "$staging"
mkdir -p -- {unit}
for f in "$staging"/* "$staging"/.[!.]* "$staging"/..?*; do
    if [ -e "$f" ]; then
        t={unit}/"${{f##*/}}"
        if [ -L "$t" ]; then rm -f -- "$t"; fi
        if [ -d "$t" ]; then echo "cannot replace directory $t by a file" >&2; exit 1; fi
        mv -f -- "$f" "$t"
    fi
done"""
        action = f"put files into data unit {unit_id!r}"
        with self._ssh(action, script, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) as proc:
            assert proc.stdin is not None
            # BrokenPipeError: the remote side gave up; its stderr says why (raised on exit).
            with contextlib.suppress(BrokenPipeError):
                self._send(proc.stdin, unit_id, paths, names)
        return names

    def _send(
        self, stream: IO[bytes], unit_id: str, paths: Sequence[str], names: list[str]
    ) -> None:
        """Write ``paths`` as a tar stream of regular files named ``names`` to ``stream``."""
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            for path, name in zip(paths, names, strict=True):
                try:
                    with open(path, "rb") as source:
                        info = archive.gettarinfo(arcname=name, fileobj=source)
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        archive.addfile(info, source)
                except BrokenPipeError:
                    raise
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    raise StoreError(
                        f"cannot put {path!r} into data unit {unit_id!r}: {reason}"
                    ) from exc

    def get(self, unit_id: str, destination: str, patterns: Sequence[str] = ("*",)) -> list[str]:
        """Copy the unit's files whose names match any glob into a local directory.

        One ssh command lists the unit, one (per ~64 KiB of names) sends the chosen
        files as a tar stream. Returns the names copied, sorted; StoreError if the
        unit does not exist or a chosen name is a link or not a safe file name.
        """
        if isinstance(patterns, str):
            patterns = (patterns,)
        entries = self._entries(unit_id)
        chosen = sorted(
            name
            for name in entries
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        )
        unit_dir = self._unit_dir(unit_id)
        for name in chosen:
            safe_name(name)
            if entries[name][0] == "l":
                raise StoreError(
                    f"ssh store {self.url}: refusing to get {unit_dir}/{name} from data unit "
                    f"{unit_id!r}: it is a symbolic link, which could point anywhere"
                )
        try:
            os.makedirs(destination, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the destination {destination}: {exc.strerror or exc}"
            ) from exc
        for batch in _batches(chosen):
            self._fetch(unit_id, unit_dir, batch, destination)
        return chosen

    def _fetch(self, unit_id: str, unit_dir: str, names: list[str], destination: str) -> None:
        """Fetch ``names`` of one unit with one ssh command into ``destination``."""
        quoted = " ".join(shlex.quote(name) for name in names)
        script = f"cd -- {shlex.quote(unit_dir)} && exec tar -c -f - -- {quoted}"
        action = f"get files of data unit {unit_id!r}"
        wanted = set(names)
        with self._ssh(action, script, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            try:
                with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                    for member in archive:
                        self._receive(unit_id, archive, member, wanted, destination)
                # Read tar's padding after the end marker: closing the pipe early could
                # make ssh fail writing it.
                while proc.stdout.read(_CHUNK):
                    pass
            except tarfile.TarError as exc:
                if proc.wait() != 0:
                    return  # the remote error is the cause; _ssh raises it on exit
                raise StoreError(
                    f"ssh store {self.url}: cannot {action}: bad tar stream ({exc})"
                ) from exc
        if wanted:
            missing = ", ".join(sorted(wanted))
            raise StoreError(f"ssh store {self.url}: cannot {action}: not received: {missing}")

    def _receive(
        self,
        unit_id: str,
        archive: tarfile.TarFile,
        member: tarfile.TarInfo,
        wanted: set[str],
        destination: str,
    ) -> None:
        name = member.name
        if name not in wanted or not member.isreg():
            raise StoreError(
                f"ssh store {self.url}: refusing {name!r} from data unit {unit_id!r}: "
                "not one of the regular files asked for"
            )
        wanted.discard(name)
        source = archive.extractfile(member)
        assert source is not None
        with writing_into(destination, name) as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fchmod(out.fileno(), member.mode & 0o777)
            os.utime(out.fileno(), (member.mtime, member.mtime))

    def list(self, unit_id: str) -> list[str]:
        """Names of the unit's files, sorted; StoreError if the unit does not exist."""
        return sorted(self._entries(unit_id))

    def delete(self, unit_id: str) -> None:
        """Remove the unit and its files; deleting a missing unit is not an error."""
        unit = shlex.quote(self._unit_dir(unit_id))
        doomed = shlex.quote(f"{self.location.root}/.troy-delete-{uuid.uuid4().hex}")
        script = f"""if [ -e {unit} ] || [ -L {unit} ]; then
    mv -- {unit} {doomed} && rm -rf -- {doomed}
fi"""
        self._run(f"delete data unit {unit_id!r}", script)

    def size(self, unit_id: str) -> int:
        """Total bytes of the unit's files; StoreError if the unit does not exist."""
        return sum(size for kind, size in self._entries(unit_id).values() if kind == "f")

    def unit_url(self, unit_id: str) -> str:
        """The URL under which this unit's files can be found: ``ssh://host/root/unit_id``."""
        return f"ssh://{self.location.netloc}{quote(self._unit_dir(unit_id))}"


def _batches(names: list[str]) -> Iterator[list[str]]:
    """``names`` in groups whose quoted command line stays under ``_MAX_COMMAND``."""
    batch: list[str] = []
    length = 0
    for name in names:
        cost = len(shlex.quote(name).encode()) * 2 + 8  # quoted again for ``sh -c``
        if batch and length + cost > _MAX_COMMAND:
            yield batch
            batch, length = [], 0
        batch.append(name)
        length += cost
    if batch:
        yield batch
