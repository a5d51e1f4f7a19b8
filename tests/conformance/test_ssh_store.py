"""The ssh store against the test sshd: the store conformance suite, then what is special.

The sshd of scripts/services.sh runs on this host, so a store at
``ssh://localhost:PORT/<tmp_path>/pd`` writes into the test's own tmp_path, where
the tests can look at (and tamper with) what the store left there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from services import ssh_url, unavailable

from troy.model.errors import StoreError
from troy.plugins import registry
from troy.plugins.stores.ssh import SshStore, parse_listing, parse_ssh_url
from troy.testing.stores import StoreSuite

pytestmark = pytest.mark.ssh


class TestSshStore(StoreSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"{ssh_url()}{tmp_path}/pd"


def _source(tmp_path: Path, name: str, content: bytes = b"data") -> str:
    folder = tmp_path / "src"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(content)
    return str(folder / name)


class TestSshStoreOnTheHost:
    """What the store leaves on the (here: local) host."""

    def test_files_land_in_root_slash_unit_and_nothing_else_remains(self, tmp_path: Path) -> None:
        root = tmp_path / "pd"
        store = SshStore(f"{ssh_url()}{root}")
        store.put("du-1", [_source(tmp_path, "a b.txt", b"abc"), _source(tmp_path, "-x", b"")])
        store.put("du-2", [_source(tmp_path, "c", b"c")])
        store.delete("du-2")

        assert sorted(p.name for p in root.iterdir()) == ["du-1"]
        assert sorted(p.name for p in (root / "du-1").iterdir()) == ["-x", "a b.txt"]
        assert (root / "du-1" / "a b.txt").read_bytes() == b"abc"

    def test_names_with_shell_and_glob_characters_are_taken_literally(self, tmp_path: Path) -> None:
        names = ["$(touch pwned)", "it's", 'say "hi"', "*", "[ab].txt", "a;b", "ü.txt", "new\nline"]
        store = SshStore(f"{ssh_url()}{tmp_path}/pd")
        store.put("du-1", [_source(tmp_path, name, name.encode()) for name in names])

        assert store.list("du-1") == sorted(names)
        assert store.get("du-1", str(tmp_path / "out"), ["[[]ab].txt", "[*]"]) == ["*", "[ab].txt"]
        assert store.get("du-1", str(tmp_path / "all")) == sorted(names)
        for name in names:
            assert (tmp_path / "all" / name).read_bytes() == name.encode()
        assert not (tmp_path / "pwned").exists()
        assert not list(Path.home().glob("pwned"))

    @pytest.mark.parametrize(
        "value",
        ["$(touch PWNED)", "`touch PWNED`", ";touch PWNED;", "\ntouch PWNED\n", "'\"x\"'", " * "],
    )
    def test_a_root_and_unit_ids_with_shell_characters_are_taken_literally(
        self, tmp_path: Path, value: str
    ) -> None:
        """The root comes from the URL and the unit id from the caller: every script that
        names them on the host quotes them (put, list, size, get, delete)."""
        root = tmp_path / f"pd{value}x"
        store = SshStore(f"{ssh_url()}{quote(str(root))}")
        unit = f"du{value}1"
        store.put(unit, [_source(tmp_path, "a.txt", b"abc")])
        assert (root / unit / "a.txt").read_bytes() == b"abc"
        assert store.list(unit) == ["a.txt"]
        assert store.size(unit) == 3
        assert store.get(unit, str(tmp_path / "out")) == ["a.txt"]
        store.delete(unit)
        assert not (root / unit).exists()
        assert not list(tmp_path.rglob("PWNED")) and not (Path.home() / "PWNED").exists()

    def test_a_link_planted_in_a_unit_is_refused_on_get(self, tmp_path: Path) -> None:
        root, out = tmp_path / "pd", tmp_path / "out"
        secret = tmp_path / "secret.txt"
        secret.write_bytes(b"not for the sandbox")
        store = SshStore(f"{ssh_url()}{root}")
        store.put("du-1", [_source(tmp_path, "a.txt", b"a")])
        (root / "du-1" / "planted").symlink_to(secret)

        assert store.list("du-1") == ["a.txt", "planted"]
        assert store.size("du-1") == 1
        with pytest.raises(StoreError, match=r"planted.*symbolic link"):
            store.get("du-1", str(out))
        assert not out.exists() or not any(out.iterdir())
        assert store.get("du-1", str(out), ["a.txt"]) == ["a.txt"]

    def test_put_replaces_a_planted_link_instead_of_writing_through_it(
        self, tmp_path: Path
    ) -> None:
        root = tmp_path / "pd"
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        store = SshStore(f"{ssh_url()}{root}")
        store.put("du-1", [_source(tmp_path, "b.txt", b"b")])
        (root / "du-1" / "a.txt").symlink_to(elsewhere)

        store.put("du-1", [_source(tmp_path, "a.txt", b"new")])

        assert not (root / "du-1" / "a.txt").is_symlink()
        assert (root / "du-1" / "a.txt").read_bytes() == b"new"
        assert not any(elsewhere.iterdir())

    def test_many_files_with_long_names_go_in_batches(self, tmp_path: Path) -> None:
        # 700 names of 200 characters: more than one remote command line holds.
        names = [f"{i:03d}-{'x' * 196}" for i in range(700)]
        folder = tmp_path / "many"
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(name[:3].encode())
        store = SshStore(f"{ssh_url()}{tmp_path}/pd")
        store.put("du-1", [str(folder / name) for name in names])

        assert store.get("du-1", str(tmp_path / "out")) == names
        assert (tmp_path / "out" / names[-1]).read_bytes() == b"699"

    def test_put_keeps_modification_times_both_ways(self, tmp_path: Path) -> None:
        source = _source(tmp_path, "old.txt")
        os.utime(source, (1_000_000_000, 1_000_000_000))
        store = SshStore(f"{ssh_url()}{tmp_path}/pd")
        store.put("du-1", [source])
        store.get("du-1", str(tmp_path / "out"))

        assert os.stat(tmp_path / "pd" / "du-1" / "old.txt").st_mtime == 1_000_000_000
        assert os.stat(tmp_path / "out" / "old.txt").st_mtime == 1_000_000_000


def _wrappers_without_a_key(tmp_path: Path, port: str) -> str:
    """A PATH whose ssh uses a config that offers no key: only ``userkey`` can log in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host localhost\n"
        "    HostName 127.0.0.1\n"
        f"    Port {port}\n"
        "    IdentityFile /nonexistent/troy-no-key\n"
        "    IdentitiesOnly yes\n"
        "    StrictHostKeyChecking no\n"
        f"    UserKnownHostsFile {tmp_path}/known_hosts\n"
        "    LogLevel ERROR\n"
    )
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {config} "$@"\n')
    wrapper.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


class TestSshStoreLogin:
    def test_userkey_is_the_key_ssh_logs_in_with(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        url = f"{ssh_url()}{tmp_path}/pd"
        key = os.environ.get("TROY_TEST_SSH_KEY", "")
        if not os.path.isfile(key):
            unavailable("TROY_TEST_SSH_KEY (the test sshd's client key) is not set")
        monkeypatch.setenv(
            "PATH", _wrappers_without_a_key(tmp_path, os.environ["TROY_TEST_SSH_PORT"])
        )

        with pytest.raises(StoreError, match="Permission denied"):
            SshStore(url).put("du-1", [_source(tmp_path, "a.txt")])

        store = SshStore(url, {"userkey": key})
        assert store.put("du-1", [_source(tmp_path, "a.txt")]) == ["a.txt"]
        assert store.list("du-1") == ["a.txt"]

    def test_a_missing_userkey_is_named(self, tmp_path: Path) -> None:
        store = SshStore(f"{ssh_url()}{tmp_path}/pd", {"userkey": str(tmp_path / "no-key")})

        with pytest.raises(StoreError, match="no-key"):
            store.list("du-1")

    def test_an_unreachable_host_gives_ssh_last_error_line(self, tmp_path: Path) -> None:
        # Port 1 on loopback: nothing listens, ssh fails at once.
        store = SshStore(f"ssh://127.0.0.1:1{tmp_path}/pd")

        with pytest.raises(StoreError, match=r"ssh store ssh://127\.0\.0\.1:1/.*refused"):
            store.list("du-1")

    def test_a_missing_unit_says_so(self, tmp_path: Path) -> None:
        store = SshStore(f"{ssh_url()}{tmp_path}/pd")

        with pytest.raises(StoreError, match="no such data unit"):
            store.list("du-nope")

    def test_without_ssh_on_path_the_error_says_so(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PATH", str(tmp_path))

        with pytest.raises(StoreError, match="cannot run ssh"):
            SshStore(f"ssh://localhost{tmp_path}/pd").list("du-1")


# Offline: what the URL and the listing mean (no sshd needed).


class TestSshUrls:
    @pytest.mark.parametrize(
        ("url", "host", "user", "port", "root"),
        [
            ("ssh://host/data/pd", "host", None, None, "/data/pd"),
            ("ssh://me@host.example.org:2200/data/pd/", "host.example.org", "me", 2200, "/data/pd"),
            ("ssh://[::1]:22/my%20pd", "::1", None, 22, "/my pd"),
        ],
    )
    def test_url_parts(
        self, url: str, host: str, user: str | None, port: int | None, root: str
    ) -> None:
        location = parse_ssh_url(url)

        assert (location.host, location.user, location.port, location.root) == (
            host,
            user,
            port,
            root,
        )

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("ssh://host", "no absolute directory"),
            ("ssh:///data", "no host"),
            ("ssh://-oProxyCommand=x/data", "starts with '-'"),
            ("ssh://a$(touch%20x)b/data", "characters a host name does not"),
            ("ssh://host:99999/data", "invalid port"),
            ("sftp://host/data", "must start with ssh://"),
        ],
    )
    def test_bad_urls_are_store_errors(self, url: str, message: str) -> None:
        with pytest.raises(StoreError, match=message):
            SshStore(url)

    def test_a_password_in_the_url_is_refused_and_not_repeated(self) -> None:
        with pytest.raises(StoreError) as caught:
            SshStore("ssh://me:hunter2@host/data")

        assert "hunter2" not in str(caught.value)
        assert "password" in str(caught.value)

    def test_unit_url_round_trips(self) -> None:
        store = SshStore("ssh://me@host:2200/data/my%20pd")

        assert store.unit_url("du-1") == "ssh://me@host:2200/data/my%20pd/du-1"
        assert parse_ssh_url(store.unit_url("du-1")).root == "/data/my pd/du-1"

    def test_registry_picks_it_for_ssh_urls(self) -> None:
        assert registry.for_url("store", "ssh://host/data") is SshStore

    def test_listing_parses_names_with_spaces_and_wc_padding(self) -> None:
        output = b"f 3 a b\0f       12  lead\0l 0 link\0"

        assert parse_listing(output) == {"a b": ("f", 3), " lead": ("f", 12), "link": ("l", 0)}

    def test_ssh_is_run_in_batch_mode_with_the_key(self, tmp_path: Path) -> None:
        key = tmp_path / "key"
        key.write_text("")
        store = SshStore("ssh://me@host:2200/data", {"userkey": str(key)})

        command = store._ssh_command("true")

        assert command[:1] == ["ssh"]
        assert "BatchMode=yes" in command
        assert command[command.index("-i") + 1] == str(key)
        assert "IdentitiesOnly=yes" in command
        assert command[command.index("-p") + 1] == "2200"
        assert command[-3:] == ["--", "me@host", "sh -c true"]


def test_the_remote_script_runs_under_sh_even_for_another_login_shell(tmp_path: Path) -> None:
    """The scripts are POSIX sh: check them with dash (Debian's sh) directly, no ssh."""
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / ".dot").write_bytes(b"12")
    (tmp_path / "u" / "..dd").write_bytes(b"1")
    from troy.plugins.stores.ssh import _listing_script

    output = subprocess.run(
        ["sh", "-c", _listing_script(str(tmp_path / "u"))], capture_output=True, check=True
    ).stdout

    assert parse_listing(output) == {".dot": ("f", 2), "..dd": ("f", 1)}
