"""A small in-process runner for long playground work (projections) that a page follows.

Training has its queue and worker (``core.jobs``); a projection is shorter, belongs to one person's
session and needs no restart recovery, so it runs in a thread of the app: at most one task per user
at a time (a second start is refused with a sentence), at most ``slots`` running at once across
users (the others wait their turn, and say so), each cancellable. A user sees only their own tasks:
every call takes the user, and someone else's task id reads as an unknown one. A few finished
tasks per user are kept in memory (their results feed the Playground) for ``KEEP_S`` seconds.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field

from .common import PlaygroundError

log = logging.getLogger("atelier.playground")

KEEP_FINISHED = 3
KEEP_S = 6 * 3600
ACTIVE = ("waiting", "running")


def default_slots() -> int:
    """ATELIER_PROJECTION_SLOTS, else 1 (projections share the CPU with training)."""
    try:
        return max(1, int(os.environ.get("ATELIER_PROJECTION_SLOTS", "1")))
    except ValueError:
        return 1


class TaskStopped(Exception):
    """Raised inside a task's work when its user pressed stop before it started running."""


@dataclass
class Task:
    id: str
    user: str
    kind: str
    state: str = "waiting"           # waiting, running, done, stopped, failed
    step: int = 0
    total: int = 0
    loss: float | None = None
    preview: object = None           # the latest preview image (HWC uint8), if any
    message: str = ""
    result: object = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    done_event: threading.Event = field(default_factory=threading.Event)

    def report(self, step: int, total: int, loss: float | None = None, preview=None) -> None:
        self.step, self.total, self.loss = int(step), int(total), loss
        if preview is not None:
            self.preview = preview

    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def snapshot(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "step": self.step, "total": self.total,
                "loss": self.loss, "preview": self.preview, "message": self.message, "started": self.started,
                "finished": self.finished, "result": self.result}


class TaskRunner:
    def __init__(self, slots: int | None = None):
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(slots or default_slots())
        self._tasks: dict[str, list[Task]] = {}      # user -> tasks, oldest first

    def start(self, user: str, kind: str, work) -> str:
        """Run ``work(task)`` in a thread; it returns the result or raises PlaygroundError (its text
        becomes the task's message). Refused while the user has a task waiting or running."""
        task = Task(id=uuid.uuid4().hex, user=user, kind=kind)
        with self._lock:
            mine = self._tasks.setdefault(user, [])
            if any(t.state in ACTIVE for t in mine):
                raise PlaygroundError(f"Your {kind} is still running: stop it or wait for it to finish")
            now = time.time()
            finished = [t for t in mine if t.state not in ACTIVE and now - (t.finished or now) < KEEP_S]
            self._tasks[user] = finished[-(KEEP_FINISHED - 1):] + [task]
        threading.Thread(target=self._run, args=(task, work), name=f"{kind}-{task.id[:8]}", daemon=True).start()
        return task.id

    def _run(self, task: Task, work) -> None:
        task.message = "Waiting for another projection to finish"
        acquired = False
        try:
            while not self._slots.acquire(timeout=0.2):
                if task.stopping():
                    raise TaskStopped
            acquired = True
            if task.stopping():
                raise TaskStopped
            task.state, task.message = "running", ""
            task.result = work(task)
            task.state = "stopped" if task.stopping() else "done"
        except TaskStopped:
            task.state, task.message = "stopped", "Stopped before it started"
        except PlaygroundError as e:
            task.state, task.message = "failed", str(e)
        except MemoryError:
            task.state, task.message = "failed", "Out of memory"
        except Exception:  # noqa: BLE001 - the user gets a sentence, the log the traceback
            log.exception("%s %s failed", task.kind, task.id)
            task.state, task.message = "failed", "The projection failed; the details are in the server log"
        finally:
            task.finished = time.time()
            if acquired:
                self._slots.release()
            task.done_event.set()

    def _find(self, user: str, task_id: str | None) -> Task:
        with self._lock:
            mine = list(self._tasks.get(user, []))
        if not mine:
            raise PlaygroundError("No projection yet")
        if not task_id:
            return mine[-1]
        for t in mine:
            if t.id == task_id:
                return t
        raise PlaygroundError("No such projection (they are kept for a few hours, in this app's memory only)")

    def status(self, user: str, task_id: str | None = None) -> dict:
        """The user's task (their latest when no id), as a plain dict."""
        return self._find(user, task_id).snapshot()

    def list(self, user: str) -> list[dict]:
        """The user's kept tasks, oldest first."""
        with self._lock:
            return [t.snapshot() for t in self._tasks.get(user, [])]

    def stop(self, user: str, task_id: str | None = None) -> dict:
        task = self._find(user, task_id)
        if task.state in ACTIVE:
            task.stop_event.set()
        return task.snapshot()

    def wait(self, user: str, task_id: str, timeout: float | None = None) -> dict:
        """Block until the task has finished (for the CLI and tests)."""
        task = self._find(user, task_id)
        task.done_event.wait(timeout)
        return task.snapshot()
