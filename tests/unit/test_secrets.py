"""troy.model.secrets: URLs split, joined and redacted; text scrubbed; secret files private."""

from __future__ import annotations

import os

import pytest

from troy.model import secrets


def test_a_password_in_the_user_part_is_split_off_and_joined_back() -> None:
    url = "redis://app:p%40ss:w@127.0.0.1:6390/0?retry=5"
    public, found = secrets.split_url(url)
    assert public == "redis://app@127.0.0.1:6390/0?retry=5"
    assert found == {"password": "p@ss:w"}
    joined = secrets.join_url(public, found)
    assert secrets.split_url(joined) == (public, found)


def test_secret_query_options_are_split_off_by_name() -> None:
    url = "zmq://127.0.0.1:5555?curve_secretkey=abc%2Bdef&retry=2&ssl_keyfile=/k"
    public, found = secrets.split_url(url)
    assert found == {"curve_secretkey": "abc+def"}
    assert "curve" not in public and "retry=2" in public and "ssl_keyfile=/k" in public
    assert secrets.split_url(secrets.join_url(public, found))[1] == found


def test_a_url_without_secrets_is_left_as_it_is() -> None:
    url = "file:///tmp/x?a=1"
    assert secrets.split_url(url) == (url, {})
    assert secrets.redact_url(url) == url


def test_redacted_urls_show_stars_for_every_secret() -> None:
    shown = secrets.redact_url("rediss://u:hunter22@h:1/0?token=t0k3n&db=1", {"db"})
    assert "hunter22" not in shown and "t0k3n" not in shown
    assert shown.count("***") == 3 and "u:***@h:1" in shown


def test_scrub_removes_remembered_values_and_url_passwords() -> None:
    secrets.remember("s3-key-remembered", "ab")  # too short to scrub: never hits words
    text = "failed: s3-key-remembered at redis://x:other@h:1 (ab)"
    assert secrets.scrub(text) == "failed: *** at redis://x:***@h:1 (ab)"


def test_agent_secrets_travel_encoded_and_leave_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    word = secrets.encode({"password": "a b;$(c)"})
    assert word.replace("+", "").replace("/", "").replace("=", "").isalnum()
    monkeypatch.setenv(secrets.AGENT_SECRETS_ENV, word)
    assert secrets.take_agent_secrets() == {"password": "a b;$(c)"}
    assert secrets.AGENT_SECRETS_ENV not in os.environ
    with pytest.raises(ValueError, match=secrets.AGENT_SECRETS_ENV):
        secrets.decode("not base64 json!")


def test_an_agent_removes_inherited_secret_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from troy.plugins.coordination.redis_connect import PASSWORD_ENV

    assert PASSWORD_ENV in secrets.SECRET_ENVIRONMENT
    monkeypatch.setenv(PASSWORD_ENV, "inherited-from-the-manager")
    assert secrets.take_agent_secrets() == {}
    assert PASSWORD_ENV not in os.environ


def test_a_secret_file_must_be_private(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "pw")
    with open(path, "w") as handle:
        handle.write("s3cr3t-from-file\n")
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        secrets.read_secret_file(path)
    os.chmod(path, 0o600)
    assert secrets.read_secret_file(path) == "s3cr3t-from-file"
    assert secrets.scrub("x s3cr3t-from-file y") == "x *** y"
