"""The worker: claims queued experiments that fit its device, fairly across users, and runs them
through the trainer.

    w = Worker(device="cpu", poll=1.0); w.run_forever(stop_event)    # or w.run_once()

One worker per device; several (threads or processes, one per GPU) share the queue safely:
a claim is one transaction, and each running record carries its worker's identity, the devices
it holds and a heartbeat. A worker claims only what fits it (``devices.py``); an experiment on
several devices runs as a torchrun group that the worker treats as one job (``group.py``).
Orphans (worker dead or silent past the lease) are requeued by any worker, and train() resumes
from the run's last snapshot. A failure marks the experiment failed with a
one-line reason and the worker goes on. A run whose next snapshot would take its owner past their
storage quota stops at its last snapshot, with the quota's sentence as its error.

Fair share: a worker claims jobs round-robin across users, not first come first served. The next
job goes to the user with the fewest experiments running now; among equals, to the user whose
last job was claimed longest ago; within a user, the oldest queued job goes first
(``store.claim_order``). One user's five long jobs therefore take turns with everyone else's
instead of going first; a job already running is never paused for another.

Watchdog: each job runs in its own thread, through stages (loading the checkpoint, packing the
dataset, starting training, training steps, writing a snapshot) that report progress. A job that
makes no progress for ``stall_s`` seconds (``ATELIER_JOB_STALL_S``, default 30 minutes; the
worker's ``--stall-timeout``) is marked failed with a one-line reason naming the stage, and the
worker goes on with the next job. The stalled thread is asked to stop (packing stops within a
second; training at its next step) and whatever it does after is dropped.
"""
from __future__ import annotations

import os
import threading
import time
import traceback
import uuid

from . import api, devices, store
from .eta import human_duration

DEFAULT_STALL_S = 1800.0


def stall_seconds() -> float:
    """Seconds a job may go without progress (``ATELIER_JOB_STALL_S``, default 1800)."""
    raw = os.environ.get("ATELIER_JOB_STALL_S", "").strip()
    if not raw:
        return DEFAULT_STALL_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise store.JobsError(f"ATELIER_JOB_STALL_S must be a number of seconds above 0, not {raw[:40]!r}.")
    return value


def recover_orphans(lease_s: float | None = None) -> list[str]:
    """Requeue running experiments whose worker is gone (``stopping`` ones become ``stopped``)."""
    recovered = []
    with store.transaction() as c:
        for rec in store.all_records(c):
            if not store.is_orphan(rec, lease_s=lease_s):
                continue
            was = rec["state"]
            if was == "stopping":
                rec.update(state="stopped", finished=time.time(), worker=None, eta_seconds=None)
            else:
                rec.update(state="queued", worker=None)  # keeps its seq: first in line again
            store.put(c, rec)
            recovered.append((rec, was))
    for rec, was in recovered:
        api.append_log(rec, f"worker lost while {was}: " +
                       ("marked stopped" if rec["state"] == "stopped" else "requeued to resume from the last snapshot"))
    return [rec["id"] for rec, _ in recovered]


def claim_next(identity: dict, gpus: int = 0) -> dict | None:
    """Claim the next queued experiment in fair-share order (``store.claim_order``) that fits the
    worker ``identity`` on a machine with ``gpus`` GPUs (``devices.first_fit``), in one
    transaction; None when nothing fits now."""
    with store.transaction() as c:
        records = store.all_records(c)
        order = store.claim_order(records, store.served_times(c))
        fit = devices.first_fit(order, identity["device"], records, gpus) if order else None
        if fit is None:
            return None
        rec, held = fit
        now = time.time()
        rec.update(state="preparing", worker=dict(identity, devices=held), heartbeat=now, error=None)
        rec["started"] = rec.get("started") or now
        store.put(c, rec)
        store.mark_served(c, rec["owner"], now)
        return rec


class StageClock:
    """When a job last made progress, and in which stage; ``stalled`` is set by the watchdog."""

    def __init__(self):
        self.stage = "starting"
        self.last = time.monotonic()
        self.stalled = threading.Event()

    def enter(self, stage: str) -> None:
        self.stage, self.last = stage, time.monotonic()

    def beat(self, *_) -> None:
        self.last = time.monotonic()

    def quiet_for(self) -> float:
        return time.monotonic() - self.last

    def ticking(self, fn, stage: str | None = None):
        """``fn`` that also counts as progress (entering ``stage`` first, when given)."""
        def wrapped(*args, **kwargs):
            if stage:
                self.enter(stage)
            else:
                self.beat()
            return fn(*args, **kwargs)
        return wrapped


class Worker:
    """Runs experiments on one device. ``run_once()`` does at most one job; ``run_forever`` loops."""

    def __init__(self, device: str = "cpu", poll: float = 1.0, lease_s: float | None = None, log=None,
                 stall_s: float | None = None):
        self.device, self.poll = devices.normalise(device), poll
        self.lease_s = lease_s or store.lease_seconds()
        self.stall_s = stall_s or stall_seconds()
        self.id = uuid.uuid4().hex
        self.identity = store.worker_identity(self.id, self.device)
        self.gpus = sum(d.startswith("cuda") for d in devices.machine_devices())  # for the claims
        self.shutdown = threading.Event()   # set by run_forever's stop_event: requeue, do not stop
        self.log = log or (lambda line: None)
        store.LIVE_WORKERS.add(self.id)

    def close(self) -> None:
        store.LIVE_WORKERS.discard(self.id)

    # ---- the loop -----------------------------------------------------------------------------
    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        stop_event = stop_event or threading.Event()
        watcher = threading.Thread(target=lambda: (stop_event.wait(), self.shutdown.set()), daemon=True)
        watcher.start()
        try:
            while not stop_event.is_set():
                if self.run_once() is None and not self.calibrate():
                    stop_event.wait(self.poll)
        finally:
            self.shutdown.set()
            self.close()

    def run_once(self) -> dict | None:
        """Recover orphans, claim the next experiment (fair share) and run it. Returns its final record."""
        recover_orphans(self.lease_s)
        rec = claim_next(self.identity, self.gpus)
        if rec is None:
            return None
        self.log(f"running {rec['id']} ({rec['title']}) on {self.device}")
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(rec["id"], beat_stop), daemon=True)
        beat.start()
        try:
            return self._supervise(rec)
        finally:
            beat_stop.set()
            beat.join(timeout=5)

    # ---- the watchdog -------------------------------------------------------------------------
    def _supervise(self, rec: dict) -> dict | None:
        """Run the job in its own thread; fail it when a stage goes quiet for longer than stall_s."""
        clock, box = StageClock(), {}
        job = threading.Thread(target=lambda: box.setdefault("rec", self._run(rec, clock)),
                               name=f"atelier-job-{rec['id'][:8]}", daemon=True)
        job.start()
        while job.is_alive():
            job.join(timeout=min(1.0, self.stall_s / 4))
            if job.is_alive() and clock.quiet_for() > self.stall_s:
                return self._stalled(rec, clock)
        return box.get("rec")

    def _stalled(self, rec: dict, clock: StageClock) -> dict | None:
        clock.stalled.set()
        reason = (f"No progress for {human_duration(self.stall_s)} while {clock.stage}: stopped by the watchdog "
                  f"(limit ATELIER_JOB_STALL_S).")
        api.append_log(rec, f"failed: {reason}")
        self.log(f"{rec['id']}: {reason}")
        return self._set(rec["id"], state="failed", error=reason, finished=time.time(), eta_seconds=None,
                         worker=None)

    def calibrate(self) -> bool:
        """When idle: time one (model shape, batch, device) the ETA of the page asked for (``eta``)."""
        from . import eta
        try:
            return eta.calibrate_pending(self.device, stop=self.shutdown)
        except Exception:  # noqa: BLE001 - a failed measurement never stops the worker
            traceback.print_exc()
            return False

    def _mine(self, rec: dict | None) -> bool:
        return rec is not None and (rec.get("worker") or {}).get("id") == self.id

    def _heartbeat(self, exp_id: str, stop: threading.Event) -> None:
        while not stop.wait(max(self.lease_s / 4, 0.2)):
            store.update(exp_id, lambda r: self._mine(r) and r.__setitem__("heartbeat", time.time()))

    def _set(self, exp_id: str, **fields) -> dict | None:
        def fn(r):
            if not self._mine(r):
                return False
            r.update(fields, heartbeat=time.time())
        return store.update(exp_id, fn)

    # ---- one experiment -----------------------------------------------------------------------
    def _run(self, rec: dict, clock: StageClock) -> dict | None:
        exp_id = rec["id"]
        say = clock.ticking(lambda line: api.append_log(rec, line))
        lost = threading.Event()

        def abort_fn() -> bool:
            if store.abort_requested(exp_id) or self.shutdown.is_set():
                return True
            if clock.stalled.is_set() or not self._mine(store.get(store.cache(), exp_id)):
                lost.set()  # failed by the watchdog, reclaimed or deleted: never train the same run twice
                return True
            return False

        try:
            result = self._train(rec, say, abort_fn, clock)
        except Exception as e:  # noqa: BLE001 - any failure marks the job failed; the worker goes on
            if clock.stalled.is_set():
                return None  # the watchdog has failed the job already
            reason = store.one_line(e)
            say(f"failed: {reason}")
            say(traceback.format_exc(limit=8))
            self._release_cuda()
            return self._set(exp_id, state="failed", error=reason, finished=time.time(), eta_seconds=None, worker=None)
        if clock.stalled.is_set():
            return None
        if lost.is_set():
            say("this worker lost its claim on the experiment; another worker carries on")
            return store.get(store.cache(), exp_id)
        if result["state"] == "stopped" and self.shutdown.is_set() and not store.abort_requested(exp_id):
            say(f"worker shutting down at step {result['step']:,}: requeued")
            return self._set(exp_id, state="queued", step=result["step"], worker=None)
        if result["state"] == "finished":
            say(f"finished at step {result['step']:,}")
            return self._set(exp_id, state="finished", step=result["step"], finished=time.time(), eta_seconds=0,
                             worker=None)
        if result["state"] == "storage_full":
            why = error = result["reason"]
        elif result["state"] == "time_budget":
            why, error = "time budget spent", "Time budget spent."
        else:
            why, error = "stopped by the user", None
        say(f"stopped at step {result['step']:,} ({why})")
        with store.transaction() as c:
            store.set_abort(c, exp_id, False)
        return self._set(exp_id, state="stopped", step=result["step"], finished=time.time(), eta_seconds=None,
                         worker=None, error=error)

    def _train(self, rec: dict, say, abort_fn, clock: StageClock) -> dict:
        from .. import datasets, quota
        from ..checkpoints import resolve_checkpoint
        from ..storage import read_json
        from ..stylegan import load_checkpoint, run_files
        from ..stylegan.train import train
        from ..stylegan.train_config import TrainConfig
        from . import eta, group
        exp_id, owner = rec["id"], rec["owner"]
        cfg = TrainConfig.from_dict(dict(rec["options"], steps=rec["steps"], device=self.device))
        say(f"preparing on {self.device}: loading checkpoint {rec['checkpoint']}")
        clock.enter("loading the checkpoint")
        ckpt = load_checkpoint(resolve_checkpoint(rec["checkpoint"], user=owner))
        say(f"packing dataset {rec.get('dataset_name') or rec['dataset']} at {ckpt.resolution} px ({rec['crop']} crop)")
        try:
            dataset = self.pack(rec, ckpt.resolution, clock, abort_fn)
        except datasets.DecodingStopped:
            return {"state": "stopped", "step": rec.get("step", 0)}
        clock.enter("starting training")
        if len(dataset) == 0:
            raise datasets.DatasetError("The dataset holds no usable images.")
        def to_training(r):
            if not self._mine(r) or r["state"] != "preparing":
                return False
            r.update(state="training", resolution=ckpt.resolution, heartbeat=time.time())
        current = store.update(exp_id, to_training)
        if not self._mine(current) or current["state"] != "training":
            return {"state": "stopped", "step": rec.get("step", 0)}  # stop or delete came during preparing
        say(f"training {cfg.steps:,} steps on {len(dataset):,} images")

        def progress(p: dict) -> None:
            timer.tick(p)
            fields = dict(step=p["step"], eta_seconds=round(p["eta_seconds"], 1), sec_per_step=p["sec_per_step"])
            if store.abort_requested(exp_id):
                fields.pop("eta_seconds")
            self._set(exp_id, **fields)

        provenance = {"experiment": exp_id, "title": rec["title"], "checkpoint": rec["checkpoint"],
                      "dataset": rec.get("dataset_name") or rec["dataset"], "dataset_id": rec["dataset"],
                      "crop": rec["crop"]}

        fresh = not run_files.list_snapshots(store.run_dir(owner, exp_id))
        timer = eta.RunTimer()  # from here: start-up, steps and snapshots as the ETA counts them
        run = train if cfg.devices == 1 else group.runner(rec)  # several devices: a torchrun group
        result = run(cfg, store.run_dir(owner, exp_id), dataset=dataset, checkpoint=ckpt,
                     progress_fn=clock.ticking(progress, "training"), abort_fn=abort_fn, provenance=provenance,
                     log=say, before_snapshot=clock.ticking(quota.snapshot_guard(owner), "writing a snapshot"))
        batch = (read_json(store.run_dir(owner, exp_id) / "config.json", {}) or {}).get("batch")
        if batch and cfg.devices == 1:  # the ETA's figures are one device's
            eta.record_run(ckpt.resolution, ckpt.g_kwargs, batch, self.device, timer, fresh=fresh,
                           precision=cfg.precision)
        return result

    @staticmethod
    def pack(rec: dict, resolution: int, clock: StageClock, should_stop):
        """The experiment's dataset packed at ``resolution`` (packing it first when needed): each
        image packed is progress; ``should_stop()`` or the watchdog ends the packing within a second."""
        from .. import datasets
        clock.enter("packing the dataset")
        return datasets.open_packed(rec["dataset"], resolution, rec["owner"], crop=rec["crop"],
                                    progress_fn=clock.beat,
                                    should_stop=lambda: clock.stalled.is_set() or should_stop())

    @staticmethod
    def _release_cuda() -> None:
        try:
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # noqa: BLE001
            pass


def start_background_worker(device: str = "auto", poll: float = 1.0) -> tuple[threading.Thread, threading.Event]:
    """The app's in-process worker: a daemon thread. Set the returned event to stop it cleanly."""
    stop = threading.Event()
    if device == "auto":
        try:
            import torch
            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            device = "cpu"
    worker = Worker(device=device, poll=poll)
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name="atelier-worker", daemon=True)
    thread.start()
    return thread, stop
