"""``python -m core.cli users add|remove|passwd|list``: the accounts of ``python app.py --auth FILE``."""
from __future__ import annotations

import sys

from core.cli import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("users", help="add and remove users, set passwords (for app.py --auth FILE)",
                              description="Manage the auth file: users with salted scrypt password hashes. "
                                          "The default file is <ATELIER_HOME>/users.json.")
    sub = p.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    for action, helptext in (("add", "add a user"), ("remove", "remove a user (their data stays)"),
                             ("passwd", "set a user's password")):
        a = sub.add_parser(action, help=helptext)
        a.add_argument("name", metavar="NAME", help="1-32 of a-z 0-9 . _ -, starting with a letter or digit")
        a.add_argument("--file", default=None, help="auth file (default: <ATELIER_HOME>/users.json)")
        if action != "remove":
            a.add_argument("--password-stdin", action="store_true",
                           help="read the password from the first line of stdin instead of prompting")
        a.set_defaults(func=run, action=action)
    ls = sub.add_parser("list", help="list user names")
    ls.add_argument("--file", default=None, help="auth file (default: <ATELIER_HOME>/users.json)")
    ls.set_defaults(func=run, action="list")


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
                print(name)
            return 0
        users.validate_username(args.name)
        if args.action == "add":
            users.add_user(path, args.name, _password(args))
            print(f"added {args.name} to {path}")
        elif args.action == "passwd":
            if args.name not in users.list_users(path):
                raise users.UsersError(f"No user named {args.name!r}")
            users.set_password(path, args.name, _password(args))
            print(f"password of {args.name} changed in {path}")
        else:
            users.remove_user(path, args.name)
            print(f"removed {args.name} from {path} (their data under the data root is kept)")
    except users.UsersError as e:
        raise UserError(str(e)) from None
    return 0
