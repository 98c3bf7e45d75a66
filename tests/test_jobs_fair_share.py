"""Fair share: workers claim jobs round-robin across users, FIFO within a user."""
from __future__ import annotations

import time

import pytest
from jobs_fixtures import TINY_OPTIONS, make_checkpoint, make_dataset

from core import jobs
from core.jobs import store
from core.jobs.worker import claim_next


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    monkeypatch.delenv("ATELIER_MAX_JOBS_PER_USER", raising=False)
    ckpt = make_checkpoint(tmp_path / "tiny.safetensors")
    return {"ckpt": str(ckpt), "alice": make_dataset(tmp_path, "alice"), "bob": make_dataset(tmp_path, "bob")}


def _submit(home, user, title):
    return jobs.submit_experiment(user, title=title, dataset=home[user], checkpoint=home["ckpt"], steps=25_000,
                                  options=dict(TINY_OPTIONS), allow_paths=True)


def _finish(exp_id):
    store.update(exp_id, lambda r: r.update(state="finished", worker=None))


def test_two_users_take_turns_one_worker(home):
    alice = [_submit(home, "alice", f"long {i}") for i in range(5)]      # five 25,000-step jobs first
    bob = [_submit(home, "bob", f"short {i}") for i in range(2)]
    expected = [alice[0], bob[0], alice[1], bob[1], alice[2], alice[3], alice[4]]
    shown = {r["id"]: r["queue_position"] for u in ("alice", "bob") for r in jobs.list_experiments(u)}
    assert [shown[i] for i in expected] == [1, 2, 3, 4, 5, 6, 7]
    identity = store.worker_identity("one-worker", "cpu")
    claimed = []
    while (rec := claim_next(identity)) is not None:
        assert rec["state"] == "preparing" and rec["worker"]["id"] == "one-worker"
        claimed.append(rec["id"])
        _finish(rec["id"])                       # one worker: each job ends before the next claim
    assert claimed == expected


def test_the_user_with_fewer_jobs_running_goes_first(home):
    a1, a2 = _submit(home, "alice", "a1"), _submit(home, "alice", "a2")
    b1 = _submit(home, "bob", "b1")
    gpu0, gpu1 = store.worker_identity("gpu0", "cuda:0"), store.worker_identity("gpu1", "cuda:1")
    assert claim_next(gpu0, gpus=2)["id"] == a1    # oldest job, nobody served yet
    with store.transaction() as c:
        store.mark_served(c, "bob", time.time() + 60)    # bob was served after alice ...
    # ... but alice has a job running and bob none: the second worker takes bob's
    assert claim_next(gpu1, gpus=2)["id"] == b1
    assert jobs.get_experiment(a2, "alice")["queue_position"] == 1
    _finish(b1)                                          # its GPU is free again
    assert claim_next(gpu1, gpus=2)["id"] == a2


def test_requeued_and_continued_jobs_keep_fifo_within_a_user(home):
    a1, a2 = _submit(home, "alice", "a1"), _submit(home, "alice", "a2")
    jobs.stop_experiment(a1, "alice")
    jobs.continue_experiment(a1, "alice", 30)           # continued: back of alice's line
    assert [r["id"] for r in store.claim_order(store.all_records(store.cache()), {})] == [a2, a1]
