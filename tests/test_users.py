"""Accounts: the auth file, hashing, verification, the Gradio auth callable and the users CLI."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core import users
from core.users import UsersError

REPO = Path(__file__).resolve().parent.parent
PW = "correct horse battery"


def test_add_verify_and_file_shape(tmp_path):
    f = tmp_path / "users.json"
    users.add_user(f, "alice", PW)
    assert users.verify(f, "alice", PW)
    assert not users.verify(f, "alice", PW + "!")
    assert not users.verify(f, "bob", PW)
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    rec = json.loads(f.read_text())["users"]["alice"]
    assert rec["algorithm"] == "scrypt" and (rec["n"], rec["r"], rec["p"]) == (2 ** 17, 8, 1)
    assert len(bytes.fromhex(rec["sessions"])) == 8
    assert len(bytes.fromhex(rec["salt"])) == 16
    assert PW not in f.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_salts_differ_and_passwords_change(tmp_path):
    f = tmp_path / "u.json"
    users.add_user(f, "alice", PW)
    users.add_user(f, "bob", PW)
    data = json.loads(f.read_text())["users"]
    assert data["alice"]["salt"] != data["bob"]["salt"] and data["alice"]["hash"] != data["bob"]["hash"]
    users.set_password(f, "alice", "another password")
    assert users.verify(f, "alice", "another password") and not users.verify(f, "alice", PW)
    assert users.verify(f, "bob", PW)
    users.remove_user(f, "bob")
    assert users.list_users(f) == ["alice"] and not users.verify(f, "bob", PW)


@pytest.mark.parametrize("name", ["", "Alice", "../x", "a/b", ".hidden", "a" * 33, "x\0y", "é", "-a", "a..b", None, 5])
def test_bad_names_refused(tmp_path, name):
    with pytest.raises(UsersError):
        users.add_user(tmp_path / "u.json", name, PW)
    assert not (tmp_path / "u.json").exists()


def test_password_rules_and_refusals(tmp_path):
    f = tmp_path / "u.json"
    with pytest.raises(UsersError, match="too short"):
        users.add_user(f, "alice", "1234567")
    with pytest.raises(UsersError, match="too long"):
        users.add_user(f, "alice", "x" * 1025)
    users.add_user(f, "alice", PW)
    with pytest.raises(UsersError, match="already exists"):
        users.add_user(f, "alice", PW)
    with pytest.raises(UsersError, match="No user"):
        users.set_password(f, "bob", PW)
    with pytest.raises(UsersError, match="No user"):
        users.remove_user(f, "bob")
    # unicode passwords compare after NFC normalisation
    users.add_user(f, "carol", "caf\u00e9 au lait")
    assert users.verify(f, "carol", "cafe\u0301 au lait")


def test_verify_never_raises(tmp_path):
    f = tmp_path / "u.json"
    users.add_user(f, "alice", PW)
    for name, pw in [(None, PW), ("alice", None), ("alice", b"bytes"), ("../alice", PW), ("alice", "x" * 100_000),
                     (["alice"], PW)]:
        assert users.verify(f, name, pw) is False
    assert users.verify(tmp_path / "missing.json", "alice", PW) is False
    f.write_text("{not json")
    assert users.verify(f, "alice", PW) is False
    # a tampered record with absurd scrypt parameters is not honoured (no memory blow-up)
    users_data = {"users": {"eve": {"n": 2 ** 30, "r": 64, "p": 64, "salt": "00", "hash": "00"}}}
    f.write_text(json.dumps(users_data))
    assert users.verify(f, "eve", PW) is False


def _old_record(password: str) -> dict:
    """A record as Atelier wrote them before scrypt moved to n=2^17 (and before session stamps)."""
    import hashlib
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1, maxmem=64 * 2 ** 20, dklen=64)
    return {"algorithm": "scrypt", "n": 2 ** 14, "r": 8, "p": 1, "salt": salt.hex(), "hash": digest.hex(),
            "created": "2026-01-01T00:00:00+00:00", "updated": "2026-01-01T00:00:00+00:00"}


def test_old_hash_verifies_and_is_rehashed_on_sign_in(tmp_path):
    f = tmp_path / "u.json"
    f.write_text(json.dumps({"format_version": 1, "users": {"alice": _old_record(PW), "bob": _old_record(PW)}}))
    before = json.loads(f.read_text())["users"]
    assert users.authenticate(f, "alice", "wrong password") is None
    assert json.loads(f.read_text())["users"] == before          # a failure rewrites nothing
    stamp = users.authenticate(f, "alice", PW)
    assert stamp == ""                                           # old records share the empty stamp
    after = json.loads(f.read_text())["users"]
    assert (after["alice"]["n"], after["alice"]["r"], after["alice"]["p"]) == (2 ** 17, 8, 1)
    assert after["alice"]["salt"] != before["alice"]["salt"] and after["alice"]["created"] == before["alice"]["created"]
    assert after["bob"] == before["bob"]                         # only the one who signed in
    assert users.session_stamps(f)["alice"] == stamp             # a rehash does not end her sessions
    assert users.verify(f, "alice", PW) and not users.verify(f, "alice", "wrong password")
    assert users.verify(f, "bob", PW)


def test_rehash_failure_still_signs_in(tmp_path, monkeypatch):
    f = tmp_path / "u.json"
    f.write_text(json.dumps({"users": {"alice": _old_record(PW)}}))

    def disk_full(*_):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(users, "_write", disk_full)
    assert users.authenticate(f, "alice", PW) == ""
    assert json.loads(f.read_text())["users"]["alice"]["n"] == 2 ** 14


def test_session_stamps_change_on_passwd_revoke_and_remove(tmp_path):
    f = tmp_path / "u.json"
    users.add_user(f, "alice", PW)
    users.add_user(f, "bob", PW)
    first = users.session_stamps(f)
    assert set(first) == {"alice", "bob"} and first["alice"] != first["bob"]
    assert users.authenticate(f, "alice", PW) == first["alice"]
    assert users.session_stamps(f) is first                      # unchanged file: the cached dict
    users.set_password(f, "alice", "another password")
    second = users.session_stamps(f)
    assert second["alice"] != first["alice"] and second["bob"] == first["bob"]
    users.revoke_sessions(f, "bob")
    third = users.session_stamps(f)
    assert third["bob"] != second["bob"] and third["alice"] == second["alice"]
    assert users.verify(f, "bob", PW)                            # revoking keeps the password
    users.remove_user(f, "bob")
    assert set(users.session_stamps(f)) == {"alice"}
    users.add_user(f, "bob", PW)                                 # the same name again: a new stamp
    assert users.session_stamps(f)["bob"] not in (first["bob"], third["bob"])
    with pytest.raises(UsersError, match="No user"):
        users.revoke_sessions(f, "carol")
    f.write_text("{not json")
    assert users.session_stamps(f) == {} and users.session_stamps(tmp_path / "missing.json") == {}


def test_load_auth(tmp_path):
    f = tmp_path / "u.json"
    with pytest.raises(UsersError, match="No auth file"):
        users.load_auth(f)
    f.write_text(json.dumps({"users": {}}))
    with pytest.raises(UsersError, match="no users"):
        users.load_auth(f)
    users.add_user(f, "alice", PW)
    auth = users.load_auth(f)
    assert auth("alice", PW) and not auth("alice", "wrong password") and not auth("mallory", PW)
    users.add_user(f, "bob", PW)          # picked up without a restart
    assert auth("bob", PW)
    users.remove_user(f, "alice")
    assert not auth("alice", PW)


def _cli(home, *args, stdin=""):
    env = dict(os.environ, ATELIER_HOME=str(home), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "core.cli", "users", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=60)


def test_cli(tmp_path):
    home = tmp_path / "home"
    r = _cli(home, "add", "alice", "--password-stdin", stdin=PW + "\n")
    assert r.returncode == 0, r.stderr
    f = home / "users.json"
    assert users.verify(f, "alice", PW)
    r = _cli(home, "add", "alice", "--password-stdin", stdin=PW + "\n")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "already exists" in r.stderr
    r = _cli(home, "add", "../evil", "--password-stdin", stdin=PW + "\n")
    assert r.returncode == 2 and "Invalid user name" in r.stderr
    r = _cli(home, "add", "bob", "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and "too short" in r.stderr
    r = _cli(home, "add", "bob", "--password-stdin")
    assert r.returncode == 2 and "no password" in r.stderr
    other = tmp_path / "elsewhere.json"
    r = _cli(home, "passwd", "alice", "--file", str(other), "--password-stdin", stdin="new password\n")
    assert r.returncode == 2 and "No user" in r.stderr
    stamp = users.session_stamps(f)["alice"]
    r = _cli(home, "passwd", "alice", "--password-stdin", stdin="new password\n")
    assert r.returncode == 0 and users.verify(f, "alice", "new password")
    assert "Every session of alice has ended" in r.stdout and users.session_stamps(f)["alice"] != stamp
    stamp = users.session_stamps(f)["alice"]
    r = _cli(home, "revoke", "alice")
    assert r.returncode == 0 and "Every session of alice has ended" in r.stdout
    assert users.session_stamps(f)["alice"] != stamp and users.verify(f, "alice", "new password")
    r = _cli(home, "revoke", "bob")
    assert r.returncode == 2 and "No user" in r.stderr
    assert _cli(home, "list").stdout.split() == ["alice"]
    r = _cli(home, "remove", "alice")
    assert r.returncode == 0 and users.list_users(f) == [] and "Every session of alice has ended" in r.stdout
    r = _cli(home, "remove", "alice")
    assert r.returncode == 2 and "No user" in r.stderr


def test_cli_prompt_twice(tmp_path, monkeypatch, capsys):
    from core.cli import main
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    answers = iter(["first password", "other password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "alice"]) == 2
    assert "do not match" in capsys.readouterr().err
    answers = iter([PW, PW])
    assert main(["users", "add", "alice"]) == 0
    assert users.verify(tmp_path / "home" / "users.json", "alice", PW)
