"""Accounts for ``python app.py --auth FILE``: users with salted scrypt password hashes.

    add_user(path, "alice", "correct horse")      # UsersError on a bad name, short password, taken name
    verify(path, "alice", "correct horse")        # True
    authenticate(path, "alice", "correct horse")  # her session stamp (a str), None when refused
    session_stamps(path)                          # {"alice": stamp}: re-read only when the file changed
    app.launch(auth=load_auth(path))             # Gradio calls fn(username, password) -> bool

The file (JSON, mode 0600, written atomically) holds, per user, the scrypt parameters, a random
16-byte salt, the 64-byte hash and a random **session stamp**; never a password. Default place:
``<data root>/users.json``.

Hashing: scrypt with n=2^17, r=8, p=1 (the OWASP minimum for scrypt; ~128 MiB and ~0.6 s of one
core per hash on a 2020s CPU). At most ``MAX_CONCURRENT_HASHES`` hashes run at once in a process, so
memory stays bounded however many sign-ins arrive. Records written with older parameters (n=2^14)
still verify, and are rehashed with the current ones at the next successful sign-in.

Sessions: the web app remembers the stamp a session signed in with and checks it on every request.
``set_password``, ``remove_user`` and ``revoke_sessions`` change (or remove) the stamp, so the
running server ends that user's sessions even though the change was made by another process.

Names are ``^[a-z0-9][a-z0-9_.-]{0,31}$``: they become folder names under ``users/``, so nothing
path-like can pass. ``local`` is allowed on purpose: it is the user who owns everything made
without ``--auth``; adding an account named ``local`` is how that data stays reachable once
accounts are on. Passwords are 8 to 1,024 characters (the cap bounds the cost of one attempt),
compared as NFC-normalised UTF-8.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from .storage import atomic_path, data_root, file_lock

__all__ = ["UsersError", "default_auth_path", "validate_username", "add_user", "remove_user", "set_password",
           "revoke_sessions", "verify", "authenticate", "session_stamps", "list_users", "load_auth",
           "check_auth_file", "SCRYPT_N", "SCRYPT_R", "SCRYPT_P", "MIN_PASSWORD", "MAX_PASSWORD",
           "MAX_CONCURRENT_HASHES"]

log = logging.getLogger("atelier.users")

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 17, 8, 1
MAX_STORED_N = 2 ** 17                 # a stored record asking for more is not honoured (memory)
SALT_BYTES, HASH_BYTES, STAMP_BYTES = 16, 64, 8
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
FORMAT_VERSION = 1
_SCRYPT_MAXMEM = 160 * 1024 * 1024    # OpenSSL needs a little over 128 * n * r = 128 MiB at n = 2**17, r = 8
# Each hash holds ~128 MiB and one core: half the cores (1 to 4) hash at once, the rest serve requests.
MAX_CONCURRENT_HASHES = max(1, min(4, (os.cpu_count() or 2) // 2))
_HASH_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


class UsersError(ValueError):
    """A refused account operation; the message is one line for the admin."""


def default_auth_path() -> Path:
    return data_root() / "users.json"


def validate_username(name) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise UsersError(f"Invalid user name {str(name)[:40]!r}: use 1-32 lower-case letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit")
    return name


def _password_bytes(password) -> bytes:
    if not isinstance(password, str):
        raise UsersError("The password must be text")
    password = unicodedata.normalize("NFC", password)
    if len(password) < MIN_PASSWORD:
        raise UsersError(f"The password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsersError(f"The password is too long: at most {MAX_PASSWORD} characters")
    return password.encode("utf-8")


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    with _HASH_SLOTS:  # hashlib releases the GIL: the slots bound memory and cores, not Python
        return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=HASH_BYTES)


def _hash_record(password: str) -> dict:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(_password_bytes(password), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return {"algorithm": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
            "salt": salt.hex(), "hash": digest.hex()}


def _new_stamp() -> str:
    return secrets.token_hex(STAMP_BYTES)


def _is_current(rec: dict) -> bool:
    return (rec.get("algorithm", "scrypt"), rec.get("n"), rec.get("r"), rec.get("p")) == (
        "scrypt", SCRYPT_N, SCRYPT_R, SCRYPT_P)


# A fixed record to hash against for unknown names, so a miss costs as much as a wrong password.
_DUMMY = {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": "00" * SALT_BYTES, "hash": "00" * HASH_BYTES}


# ----------------------------------------------------------------------------------------------
# The file

def _read(path: Path) -> dict:
    """The users dict of the file; {} when the file does not exist. UsersError when unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise UsersError(f"The auth file {path} cannot be read ({type(e).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("users", {}), dict):
        raise UsersError(f"The auth file {path} is not an Atelier users file")
    return dict(data.get("users", {}))


def _write(path: Path, users: dict) -> None:
    body = json.dumps({"format_version": FORMAT_VERSION, "users": users}, indent=2, sort_keys=True).encode()
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)
        tmp.write_bytes(body)
    os.chmod(path, 0o600)


def _locked(path: Path):
    """One editor of the file at a time (two admins running the CLI at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return file_lock(path.with_name(path.name + ".lock"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------------------------
# Changes

def add_user(path, name: str, password: str) -> None:
    """Add ``name`` with ``password``; UsersError if the name is invalid or taken, or the password short."""
    path, name = Path(path), validate_username(name)
    record = _hash_record(password)   # validates the password before touching the file
    with _locked(path):
        users = _read(path)
        if name in users:
            raise UsersError(f"User {name!r} already exists: use `users passwd {name}` to change the password")
        users[name] = dict(record, sessions=_new_stamp(), created=_now(), updated=_now())
        _write(path, users)


def _change_user(path: Path, name: str, change) -> None:
    """``change(users)`` on the file's users under its lock, then written back; ``name`` must be one."""
    with _locked(path):
        users = _read(path)
        if name not in users:
            raise UsersError(f"No user named {name!r}")
        change(users)
        _write(path, users)


def remove_user(path, name: str) -> None:
    """Remove ``name`` from the file (which ends their sessions). Their data under the data root stays."""
    path, name = Path(path), validate_username(name)
    _change_user(path, name, lambda users: users.pop(name))


def set_password(path, name: str, password: str) -> None:
    """A new password for ``name``; their sessions end (a new session stamp)."""
    path, name = Path(path), validate_username(name)
    record = _hash_record(password)
    _change_user(path, name, lambda users: users[name].update(record, sessions=_new_stamp(), updated=_now()))


def revoke_sessions(path, name: str) -> None:
    """End every session of ``name`` (a new session stamp); the password stays."""
    path, name = Path(path), validate_username(name)
    _change_user(path, name, lambda users: users[name].update(sessions=_new_stamp(), updated=_now()))


def list_users(path) -> list[str]:
    return sorted(_read(Path(path)))


# ----------------------------------------------------------------------------------------------
# Checking

def _check(users: dict, name, password) -> bool:
    rec = users.get(name) if isinstance(name, str) and NAME_RE.fullmatch(name) else None
    valid = isinstance(rec, dict)
    try:
        pw = unicodedata.normalize("NFC", password).encode("utf-8") if isinstance(password, str) else b""
        if len(pw) > 4 * MAX_PASSWORD:
            pw, valid = b"", False
        use = rec if valid else _DUMMY
        n, r, p = int(use["n"]), int(use["r"]), int(use["p"])
        if not (2 <= n <= MAX_STORED_N and n & (n - 1) == 0 and 1 <= r <= 8 and 1 <= p <= 4):
            n, r, p, valid = SCRYPT_N, SCRYPT_R, SCRYPT_P, False
        salt, expected = bytes.fromhex(use["salt"]), bytes.fromhex(use["hash"])
    except (KeyError, TypeError, ValueError):
        salt, expected, n, r, p, valid = b"\0" * SALT_BYTES, b"\0" * HASH_BYTES, SCRYPT_N, SCRYPT_R, SCRYPT_P, False
        pw = b""
    got = _scrypt(pw, salt, n, r, p)
    return hmac.compare_digest(got, expected) and valid and isinstance(password, str)


def _stamp(rec: dict) -> str:
    """The record's session stamp; records written before stamps existed all share ''."""
    stamp = rec.get("sessions", "")
    return stamp if isinstance(stamp, str) else ""


def _rehash(path: Path, name: str, password: str, old_hash: str) -> None:
    """Store ``password`` with the current parameters, if the record is still the one just verified."""
    record = _hash_record(password)
    with _locked(path):
        users = _read(path)
        rec = users.get(name)
        if not isinstance(rec, dict) or rec.get("hash") != old_hash:
            return  # changed meanwhile (passwd, remove): leave it
        users[name] = dict(rec, **record, updated=_now())
        _write(path, users)


def authenticate(path, name, password) -> str | None:
    """``name``'s session stamp when ``password`` is theirs, else None (never raises for bad input).

    A record hashed with older parameters is rehashed with the current ones on success (a failure
    to write is logged; the sign-in still succeeds)."""
    path = Path(path)
    try:
        users = _read(path)
    except UsersError:
        users = {}
    if not _check(users, name, password):
        return None
    rec = users[name]
    if not _is_current(rec):
        try:
            _rehash(path, name, password, rec.get("hash"))
        except (OSError, UsersError, ValueError) as e:
            log.warning("could not rehash %s's password with the current parameters: %s", name, e)
    return _stamp(rec)


def verify(path, name, password) -> bool:
    """True when ``name`` exists and ``password`` is theirs. An unreadable file verifies nobody."""
    return authenticate(path, name, password) is not None


_STAMPS_LOCK = threading.Lock()
_STAMPS_CACHE: dict[str, tuple[tuple, dict[str, str]]] = {}


def session_stamps(path) -> dict[str, str]:
    """``{name: session stamp}`` of every user; {} when the file is missing or unreadable.

    Cheap enough for every request: the file is read again only when its inode, size or
    modification time changed (every write replaces it by a rename)."""
    key = str(path)
    try:
        st = os.stat(key)
    except OSError:
        return {}
    signature = (st.st_ino, st.st_size, st.st_mtime_ns)
    with _STAMPS_LOCK:
        cached = _STAMPS_CACHE.get(key)
        if cached and cached[0] == signature:
            return cached[1]
    try:
        stamps = {n: _stamp(r) for n, r in _read(Path(key)).items() if isinstance(r, dict)}
    except UsersError:
        stamps = {}
    with _STAMPS_LOCK:
        _STAMPS_CACHE[key] = (signature, stamps)
    return stamps


def load_auth(path):
    """``fn(username, password) -> bool`` for ``gr.Blocks.launch(auth=fn)``.

    The file must exist and be readable now (UsersError otherwise: the app should refuse to
    start rather than run open). It is read again at each sign-in, so ``users add|remove|passwd``
    take effect without a restart; if it becomes unreadable later, nobody can sign in.
    """
    path = check_auth_file(path)

    def auth(username, password) -> bool:
        return verify(path, username, password)

    return auth


def check_auth_file(path) -> Path:
    """``path`` as a Path when it is a users file with at least one user; UsersError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UsersError(f"No auth file at {path}: create it with `python -m core.cli users add NAME --file {path}`")
    if not _read(path):
        raise UsersError(f"The auth file {path} has no users: add one with `python -m core.cli users add NAME`")
    return path
