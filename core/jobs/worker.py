"""The worker: takes queued experiments that fit its device in FIFO order and runs them through the trainer.

    w = Worker(device="cpu", poll=1.0); w.run_forever(stop_event)    # or w.run_once()

One worker per device; several (threads or processes, one per GPU) share the queue safely:
a claim is one transaction, and each running record carries its worker's identity, the devices
it holds and a heartbeat. A worker claims only what fits it (``devices.py``); an experiment on
several devices runs as a torchrun group that the worker treats as one job (``group.py``).
Orphans (worker dead or silent past the lease) are requeued by any worker, and train() resumes
from the run's last snapshot. A failure marks the experiment failed with a
one-line reason and the worker goes on. A run whose next snapshot would take its owner past their
storage quota stops at its last snapshot, with the quota's sentence as its error.
"""
from __future__ import annotations

import threading
import time
import traceback
import uuid

from . import api, devices, store


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


def _claim(identity: dict, gpus: int) -> dict | None:
    with store.transaction() as c:
        records = store.all_records(c)
        queued = sorted((r for r in records if r["state"] == "queued"), key=lambda r: r["seq"])
        fit = devices.first_fit(queued, identity["device"], records, gpus) if queued else None
        if fit is None:
            return None
        rec, held = fit
        now = time.time()
        rec.update(state="preparing", worker=dict(identity, devices=held), heartbeat=now, error=None)
        rec["started"] = rec.get("started") or now
        store.put(c, rec)
        return rec


def one_line(e: BaseException) -> str:
    text = f"{e}".strip().splitlines()
    msg = text[0] if text else type(e).__name__
    if "out of memory" in msg.lower() or type(e).__name__ == "OutOfMemoryError":
        return "Out of memory on the device: try a smaller batch (Advanced options)."
    if isinstance(e, (KeyError, AttributeError, TypeError, IndexError, NameError, AssertionError)):
        return f"{type(e).__name__}: {msg}"
    return msg


class Worker:
    """Runs experiments on one device. ``run_once()`` does at most one job; ``run_forever`` loops."""

    def __init__(self, device: str = "cpu", poll: float = 1.0, lease_s: float | None = None, log=None):
        self.device, self.poll = devices.normalise(device), poll
        self.lease_s = lease_s or store.lease_seconds()
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
                if self.run_once() is None:
                    stop_event.wait(self.poll)
        finally:
            self.shutdown.set()
            self.close()

    def run_once(self) -> dict | None:
        """Recover orphans, claim the oldest queued experiment and run it. Returns its final record."""
        recover_orphans(self.lease_s)
        rec = _claim(self.identity, self.gpus)
        if rec is None:
            return None
        self.log(f"running {rec['id']} ({rec['title']}) on {self.device}")
        beat_stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(rec["id"], beat_stop), daemon=True)
        beat.start()
        try:
            return self._run(rec)
        finally:
            beat_stop.set()
            beat.join(timeout=5)

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
    def _run(self, rec: dict) -> dict | None:
        exp_id = rec["id"]
        say = lambda line: api.append_log(rec, line)  # noqa: E731
        lost = threading.Event()

        def abort_fn() -> bool:
            if store.abort_requested(exp_id) or self.shutdown.is_set():
                return True
            if not self._mine(store.get(store.cache(), exp_id)):
                lost.set()  # reclaimed or deleted: never train the same run twice
                return True
            return False

        try:
            result = self._train(rec, say, abort_fn)
        except Exception as e:  # noqa: BLE001 - any failure marks the job failed; the worker goes on
            reason = one_line(e)
            say(f"failed: {reason}")
            say(traceback.format_exc(limit=8))
            self._release_cuda()
            return self._set(exp_id, state="failed", error=reason, finished=time.time(), eta_seconds=None, worker=None)
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

    def _train(self, rec: dict, say, abort_fn) -> dict:
        from .. import datasets, quota
        from ..checkpoints import resolve_checkpoint
        from ..stylegan import load_checkpoint
        from ..stylegan.train import train
        from ..stylegan.train_config import TrainConfig
        from . import eta, group
        exp_id, owner = rec["id"], rec["owner"]
        cfg = TrainConfig.from_dict(dict(rec["options"], steps=rec["steps"], device=self.device))
        say(f"preparing on {self.device}: loading checkpoint {rec['checkpoint']}")
        ckpt = load_checkpoint(resolve_checkpoint(rec["checkpoint"], user=owner))
        say(f"packing dataset {rec.get('dataset_name') or rec['dataset']} at {ckpt.resolution} px ({rec['crop']} crop)")
        dataset = datasets.open_packed(rec["dataset"], ckpt.resolution, owner, crop=rec["crop"])
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
        per_step: list[float] = []

        def progress(p: dict) -> None:
            per_step.append(p["sec_per_step"])  # the trainer's time of a step (snapshots not counted)
            fields = dict(step=p["step"], eta_seconds=round(p["eta_seconds"], 1), sec_per_step=p["sec_per_step"])
            if store.abort_requested(exp_id):
                fields.pop("eta_seconds")
            self._set(exp_id, **fields)

        provenance = {"experiment": exp_id, "title": rec["title"], "checkpoint": rec["checkpoint"],
                      "dataset": rec["dataset"], "crop": rec["crop"]}

        def before_snapshot(need_bytes: int) -> str | None:
            try:
                quota.check_room(owner, need_bytes, "the next snapshot")
            except quota.QuotaExceeded as e:
                return str(e)
            return None

        run = train if cfg.devices == 1 else group.runner(rec)  # several devices: a torchrun group
        result = run(cfg, store.run_dir(owner, exp_id), dataset=dataset, checkpoint=ckpt, progress_fn=progress,
                     abort_fn=abort_fn, provenance=provenance, log=say, before_snapshot=before_snapshot)
        if len(per_step) >= 10 and cfg.devices == 1:
            median = sorted(per_step)[len(per_step) // 2]
            eta.record_observed(ckpt.resolution, ckpt.g_kwargs, store.run_dir(owner, exp_id), self.device, median)
        return result

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
