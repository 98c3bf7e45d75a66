"""``python -m core.cli users add|remove|passwd|revoke|list|quota``: the accounts of ``python app.py --auth FILE``
and their storage quotas."""
from __future__ import annotations

import sys

from core.cli import UserError

SESSIONS_END = ("Every session of {name} has ended: a running app answers their next request with the sign-in "
                "page (401 over the API).")


def register(subparsers) -> None:
    p = subparsers.add_parser("users", help="add and remove users, set passwords, end sessions (app.py --auth FILE)",
                              description="Manage the auth file: users with salted scrypt password hashes. "
                                          "The default file is <ATELIER_HOME>/users.json. passwd, remove and "
                                          "revoke end the user's sessions in a running app at once.")
    sub = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    for action, helptext in (("add", "add a user"),
                             ("remove", "remove a user and end their sessions (their data stays)"),
                             ("passwd", "set a user's password and end their sessions"),
                             ("revoke", "end a user's sessions (sign them out everywhere); the password stays")):
        a = sub.add_parser(action, help=helptext)
        a.add_argument("name", metavar="NAME", help="1-32 of a-z 0-9 . _ -, starting with a letter or digit")
        a.add_argument("--file", default=None, help="auth file (default: <ATELIER_HOME>/users.json)")
        if action in ("add", "passwd"):
            a.add_argument("--password-stdin", action="store_true",
                           help="read the password from the first line of stdin instead of prompting")
        a.set_defaults(func=run, action=action)
    ls = sub.add_parser("list", help="list user names")
    ls.add_argument("--file", default=None, help="auth file (default: <ATELIER_HOME>/users.json)")
    ls.add_argument("--usage", action="store_true", help="also show each user's storage use and quota")
    ls.set_defaults(func=run, action="list")
    q = sub.add_parser("quota", help="show or set a user's storage quota",
                       description="Without --gb or --default: show the user's storage use and quota. The default "
                                   "quota is ATELIER_USER_QUOTA_GB (50 GB when unset; 0 = no limit).")
    q.add_argument("name", metavar="NAME", help="the user (also 'local', who owns what is made without --auth)")
    how = q.add_mutually_exclusive_group()
    how.add_argument("--gb", default=None, metavar="N", help="give NAME a quota of N GB (0 = no limit)")
    how.add_argument("--default", action="store_true", help="NAME goes back to the default quota")
    q.add_argument("--file", default=None, help="auth file: NAME must be one of its users")
    q.set_defaults(func=run_quota)


def _password(args) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UserError("no password on stdin")
        return line.rstrip("\r\n")
    import getpass
    try:
        first = getpass.getpass(f"Password for {args.name}: ")
        second = getpass.getpass("Repeat it: ")
    except EOFError:
        raise UserError("no password given (use --password-stdin to pipe one)") from None
    if first != second:
        raise UserError("the passwords do not match")
    return first


def run(args) -> int:
    from core import users
    path = args.file or users.default_auth_path()
    try:
        if args.action == "list":
            for name in users.list_users(path):
                print(f"{name}\t{_usage(name)}" if args.usage else name)
            return 0
        users.validate_username(args.name)
        if args.action == "add":
            users.add_user(path, args.name, _password(args))
            print(f"added {args.name} to {path}")
        elif args.action == "passwd":
            if args.name not in users.list_users(path):
                raise users.UsersError(f"No user named {args.name!r}")
            users.set_password(path, args.name, _password(args))
            print(f"password of {args.name} changed in {path}. {SESSIONS_END.format(name=args.name)}")
        elif args.action == "revoke":
            users.revoke_sessions(path, args.name)
            print(SESSIONS_END.format(name=args.name))
        else:
            users.remove_user(path, args.name)
            print(f"removed {args.name} from {path} (their data under the data root is kept). "
                  f"{SESSIONS_END.format(name=args.name)}")
    except users.UsersError as e:
        raise UserError(str(e)) from None
    return 0


def _usage(name: str) -> str:
    from core import quota
    try:
        return quota.usage_text(name)
    except quota.QuotaError as e:
        raise UserError(str(e)) from None


def run_quota(args) -> int:
    from core import quota, users
    try:
        users.validate_username(args.name)
        if args.file is not None and args.name not in users.list_users(args.file):
            raise users.UsersError(f"No user named {args.name!r} in {args.file}")
        if args.default:
            quota.set_quota(args.name, None)
        elif args.gb is not None:
            quota.set_quota(args.name, quota.parse_gb(args.gb, "--gb"))
    except (users.UsersError, quota.QuotaError) as e:
        raise UserError(str(e)) from None
    own = quota.overrides().get(args.name)
    print(f"{args.name}: {_usage(args.name)} ({'default quota' if own is None else 'own quota'})")
    return 0
