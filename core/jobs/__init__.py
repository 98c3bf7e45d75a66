"""Training experiments as durable jobs: records and queue in diskcache, a worker, ETA, recovery.

    exp_id = submit_experiment("alice", title="Ink", dataset="ink", checkpoint="default", steps=3000)
    Worker(device="cpu").run_forever(stop_event)          # or start_background_worker() in the app
    get_experiment(exp_id, "alice")   # {id, state, step, steps, eta_seconds, queue_position, ...}

Modules: ``store`` (records, transactions, leases), ``api`` (what the UI and CLI call), ``worker``
(claims and runs jobs, restart recovery), ``devices`` (which jobs fit which worker), ``group``
(a job on several devices as a torchrun group), ``eta`` (measured s/step and the estimate before start).
Nothing here imports Gradio; torch is imported only where training or measuring happens.
"""
from .api import (JobsError, LimitReached, NotFound, continue_experiment, delete_experiment, experiment_log,
                  experiment_snapshot, experiment_snapshots, experiment_stats, get_experiment, list_experiments,
                  max_jobs_per_user, nearest_snapshot, stop_experiment, submit_experiment)
from .devices import machine_devices
from .eta import estimate_experiment
from .store import ACTIVE, RUNNING, STATES
from .worker import Worker, recover_orphans, start_background_worker

__all__ = [
    "ACTIVE", "RUNNING", "STATES", "JobsError", "LimitReached", "NotFound", "Worker", "continue_experiment",
    "delete_experiment", "estimate_experiment", "experiment_log", "experiment_snapshot",
    "experiment_snapshots", "experiment_stats", "get_experiment", "list_experiments", "machine_devices",
    "max_jobs_per_user", "nearest_snapshot", "recover_orphans", "start_background_worker", "stop_experiment",
    "submit_experiment",
]
