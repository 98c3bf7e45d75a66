"""``python -m core.cli worker [--device cpu|cuda:N] [--devices all]``: run queued experiments
(one worker per device; ``--devices all`` starts one worker process per GPU of this machine)."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and Ctrl-C set ``stop``: the worker finishes its step, writes a snapshot, requeues, exits."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def _one_per_device(args) -> int:
    """A worker process per device of this machine, stopped together (SIGTERM/SIGINT passed on)."""
    from ..jobs.devices import machine_devices
    from . import UserError
    if args.devices != "all":
        raise UserError(f"--devices takes 'all' (one worker per GPU), not {args.devices!r}")
    extra = ["--poll", str(args.poll)] + (["--once"] if args.once else []) + (["--quiet"] if args.quiet else [])
    if args.stall_timeout is not None:
        extra += ["--stall-timeout", str(args.stall_timeout)]
    found = machine_devices()
    if not found[0].startswith("cuda"):
        print(f"no GPU on this machine: one worker on {found[0]}", file=sys.stderr, flush=True)
    procs = [subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--device", d, *extra]) for d in found]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _: [p.send_signal(signum) for p in procs if p.poll() is None])
    return max(p.wait() for p in procs)


def run(args) -> int:
    from ..jobs import JobsError, Worker
    if args.devices:
        return _one_per_device(args)
    from ..stylegan.trainer import resolve_device
    from . import UserError
    try:
        device = str(resolve_device(args.device))
    except RuntimeError as e:
        raise UserError(str(e)) from None
    if args.stall_timeout is not None and not 0 < args.stall_timeout < float("inf"):
        raise UserError(f"--stall-timeout must be a number of seconds above 0, not {args.stall_timeout}")
    log = (lambda line: print(line, flush=True)) if not args.quiet else None
    try:
        worker = Worker(device=device, poll=args.poll, log=log, stall_s=args.stall_timeout)
    except JobsError as e:  # a bad ATELIER_JOB_STALL_S
        raise UserError(str(e)) from None
    stop = threading.Event()
    stop_on_signals(stop)
    print(f"worker {worker.id} on {device} (pid {worker.identity['pid']}); Ctrl-C stops", file=sys.stderr, flush=True)
    if args.once:
        worker.run_once()
        worker.close()
        return 0
    worker.run_forever(stop)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("worker", help="run queued training experiments on one device",
                              description="Takes experiments from the queue, taking turns between users, and "
                                          "trains them. Start one per GPU; they share the queue safely. Interrupted "
                                          "runs are resumed; a job that stops making progress is failed.")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--devices", default=None, metavar="all",
                   help="'all': one worker process per GPU of this machine (they share the queue)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks at an empty queue")
    p.add_argument("--once", action="store_true", help="run at most one experiment, then exit")
    p.add_argument("--stall-timeout", type=float, default=None, metavar="SECONDS",
                   help="fail a job that makes no progress for this long (default: ATELIER_JOB_STALL_S, or 1800)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
