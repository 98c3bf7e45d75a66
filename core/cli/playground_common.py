"""What the playground commands share: the model a ``--checkpoint`` names, errors as one line."""
from __future__ import annotations

import contextlib

from . import UserError


@contextlib.contextmanager
def user_errors():
    """Playground, video and OS errors become one-line :class:`UserError`s."""
    from ..playground import PlaygroundError
    from ..video import VideoError
    try:
        yield
    except (PlaygroundError, VideoError) as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"{getattr(e, 'filename', None) or 'file'}: {e.strerror or e}") from None


def model_of(value: str, user: str):
    """(weights path, label) of ``--checkpoint``: a My Models id, a checkpoint name or a file."""
    from ..playground import cli_model
    with user_errors():
        return cli_model(value, user)


def add_model_args(p, required: bool = True) -> None:
    from ..storage import DEFAULT_USER
    p.add_argument("--checkpoint", required=required, help="a My Models id, 'default', a catalog or imported name, or a file")
    p.add_argument("--user", default=DEFAULT_USER, help="whose My Models, vectors and directions to use")


def library_rename(kind: str):
    """The ``rename`` command of a library kind ('vectors' or 'directions')."""
    def run_rename(args) -> int:
        from ..playground import library
        with user_errors():
            rec = library.rename(args.user, kind, args.ref, args.name)
        print(f"renamed {rec['id']} to “{rec['name']}”")
        return 0
    return run_rename


def library_delete(kind: str):
    """The ``delete`` command of a library kind ('vectors' or 'directions')."""
    def run_delete(args) -> int:
        from ..playground import library
        with user_errors():
            rec = library.delete(args.user, kind, args.ref)
        print(f"deleted “{rec['name']}”")
        return 0
    return run_delete
