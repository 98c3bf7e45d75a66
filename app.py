"""Atelier's web app: ``python app.py [--host 127.0.0.1] [--port 7860] [--share] [--auth FILE
[--session-hours H]] [--data DIR] [--no-worker]``.

Layout and wiring live in ``ui/`` (one module per tab); everything else is ``core/``. Training runs
in the background worker thread started here (or in ``python -m core.cli worker`` with
``--no-worker``), never inside a request. This file never imports torch.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
MAX_FILE_SIZE = "2gb"            # one upload (a zip or a video can be large; datasets stop at 5 GB)
SHARE_HOST = ("api.gradio.app", 443)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Atelier: fine-tune StyleGAN2 on your own images, in the browser.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for the whole network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="also give a public gradio.live link, where the network allows")
    p.add_argument("--auth", metavar="FILE", help="users file (python -m core.cli users add NAME): sign-in required")
    p.add_argument("--session-hours", metavar="H", default=None,
                   help="with --auth: a sign-in lasts H hours (default: $ATELIER_SESSION_HOURS, else 168 = a week)")
    p.add_argument("--data", metavar="DIR", help="data root (sets ATELIER_HOME; default ./data)")
    p.add_argument("--no-worker", action="store_true", help="do not train in this process (run a separate worker)")
    p.add_argument("--device", default="auto", help="the in-process worker's device: auto, cpu, cuda, cuda:N")
    return p.parse_args(argv)


def head_html() -> str:
    """The folder drop zone's script and the ended-session redirect, inline (no file of ours needs to
    be served)."""
    return "".join(f"<script>{(STATIC / name).read_text()}</script>" for name in ("dropzone.js", "session.js"))


def launch_kwargs(args: argparse.Namespace) -> dict:
    from starlette.middleware import Middleware

    from ui.auth import SessionGuard, sign_in_from_args
    from ui.event_access import EventAccessMiddleware
    from ui.file_access import FileAccessMiddleware
    signin = None
    if args.session_hours is not None and not args.auth:
        sys.exit("atelier: --session-hours needs --auth (without it nobody signs in)")
    if args.auth:
        from core.users import UsersError
        try:
            signin = sign_in_from_args(args.auth, args.session_hours)
        except (UsersError, ValueError) as e:
            sys.exit(f"atelier: {e}")
    # outermost first: sessions are checked before events and files are matched to their users
    middleware = [Middleware(SessionGuard, signin=signin), Middleware(EventAccessMiddleware),
                  Middleware(FileAccessMiddleware)]
    kwargs = dict(server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE, head=head_html(),
                  css_paths=[STATIC / "atelier.css"], allowed_paths=[], footer_links=["api", "settings"],
                  show_error=False, app_kwargs={"middleware": middleware})
    if signin is not None:
        kwargs["auth"] = signin.auth
        kwargs["auth_message"] = "Sign in to Atelier."
    kwargs["share"] = bool(args.share) and share_possible()
    return kwargs


def share_possible(timeout: float = 3.0) -> bool:
    """Gradio's share link needs its tunnel servers; say so plainly when they cannot be reached."""
    try:
        socket.create_connection(SHARE_HOST, timeout=timeout).close()
        return True
    except OSError:
        print("atelier: --share: no public link: this machine cannot reach Gradio's share servers "
              f"({SHARE_HOST[0]}). The app runs locally only; use --host 0.0.0.0 to reach it on your network.",
              file=sys.stderr)
        return False


def build_app():
    from ui import build_ui
    from ui.file_access import install
    demo = build_ui()
    demo.queue(default_concurrency_limit=4)
    install(demo)  # with --auth, a file Gradio serves is served only to the user it was handed to
    return demo


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.data:
        os.environ["ATELIER_HOME"] = str(Path(args.data).expanduser().resolve())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from core.integrity import check_data_root
    for line in check_data_root():  # quarantine what a crash left half-written, before anyone reads it
        logging.getLogger("atelier").warning("start-up check: %s", line)
    demo = build_app()
    if not args.no_worker:
        from core.jobs import JobsError, recover_orphans, start_background_worker
        recover_orphans()
        try:
            start_background_worker(device=args.device)
        except JobsError as e:  # a bad setting (ATELIER_JOB_STALL_S): one line, not a traceback
            sys.exit(f"atelier: {e}")
    demo.launch(**launch_kwargs(args))


if __name__ == "__main__":
    main()
