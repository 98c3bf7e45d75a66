"""``python -m core.cli worker [--device cpu|cuda:N] [--devices all]``: run queued experiments
(one worker per device; ``--devices all`` starts one worker process per GPU of this machine)."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading


def _one_per_device(args) -> int:
    """A worker process per device of this machine, stopped together (SIGTERM/SIGINT passed on)."""
    from ..jobs.devices import machine_devices
    from . import UserError
    if args.devices != "all":
        raise UserError(f"--devices takes 'all' (one worker per GPU), not {args.devices!r}")
    extra = ["--poll", str(args.poll)] + (["--once"] if args.once else []) + (["--quiet"] if args.quiet else [])
    found = machine_devices()
    if not found[0].startswith("cuda"):
        print(f"no GPU on this machine: one worker on {found[0]}", file=sys.stderr, flush=True)
    procs = [subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--device", d, *extra]) for d in found]
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _: [p.send_signal(signum) for p in procs if p.poll() is None])
    return max(p.wait() for p in procs)


def run(args) -> int:
    from ..jobs import Worker
    if args.devices:
        return _one_per_device(args)
    from ..stylegan.trainer import resolve_device
    try:
        device = str(resolve_device(args.device))
    except RuntimeError as e:
        from . import UserError
        raise UserError(str(e)) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # finish the step, snapshot, requeue, exit
    log = (lambda line: print(line, flush=True)) if not args.quiet else None
    worker = Worker(device=device, poll=args.poll, log=log)
    print(f"worker {worker.id} on {device} (pid {worker.identity['pid']}); Ctrl-C stops", file=sys.stderr, flush=True)
    if args.once:
        worker.run_once()
        worker.close()
        return 0
    worker.run_forever(stop)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("worker", help="run queued training experiments on one device",
                              description="Takes experiments from the queue in order and trains them. Start one "
                                          "per GPU; they share the queue safely. Interrupted runs are resumed.")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--devices", default=None, metavar="all",
                   help="'all': one worker process per GPU of this machine (they share the queue)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between looks at an empty queue")
    p.add_argument("--once", action="store_true", help="run at most one experiment, then exit")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
