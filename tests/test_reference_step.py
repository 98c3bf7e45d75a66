"""The training step vs the original StyleGAN2-ADA step, phase by phase, on files it recorded.

/work/shared/reference/official_step_fixtures.py runs the original loss on an official pickle
(Gmain, Dmain, Dreg with gain 16, Greg with gain 4; const noise, fp32, no augmentation or
mixing) and saves the inputs, each phase's loss, every parameter's gradient, w_avg and pl_mean.
Here the trainer's own phases run on the same inputs and are compared: losses to 1e-4 relative,
each parameter's gradient to 1e-3 relative (against the larger of its norm and 1e-6 of the phase's
total norm), w_avg, pl_mean and the lazy Adam settings. The files cannot be in CI (they embed
research-only code): point ATELIER_REFERENCE_FIXTURES at the folder holding step_NAME.npz and
NAME.pkl to run it.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from core.stylegan import load_checkpoint
from core.stylegan.train_config import TrainConfig
from core.stylegan.trainer import PHASES, Trainer

FIXTURES = os.environ.get("ATELIER_REFERENCE_FIXTURES")
pytestmark = pytest.mark.skipif(not FIXTURES, reason="ATELIER_REFERENCE_FIXTURES is not set (reference files "
                                "are made locally from the original code; see /work/shared/reference/README.md)")


def _trainer(ck, ref) -> Trainer:
    cfg = TrainConfig(batch=4, aug="none", style_mixing=0.0, r1_gamma=float(ref["r1_gamma"]),
                      pl_weight=float(ref["pl_weight"]), precision="fp32", device="cpu")
    tr = Trainer(cfg, copy.deepcopy(ck.G), copy.deepcopy(ck.D), device=torch.device("cpu"), batch=4)
    tr.noise_mode, tr.channels_last = "const", False  # as the original runs it on the CPU
    tr.pl_mean = torch.tensor(float(ref["pl_mean_before"]))
    return tr


def _worst_gradient_difference(phase: str, tr: Trainer, ref) -> float:
    ours = {f"G.{n}": p.grad for n, p in tr.G.named_parameters() if p.grad is not None}
    ours.update({f"D.{n}": p.grad for n, p in tr.D.named_parameters() if p.grad is not None})
    theirs = {k[len(phase) + 1:]: ref[k] for k in ref.files if k.startswith((f"{phase}/G.", f"{phase}/D."))}
    assert set(ours) == set(theirs), sorted(set(ours) ^ set(theirs))[:5]
    total = np.sqrt(sum(float(np.square(v.astype(np.float64)).sum()) for v in theirs.values()))
    worst = 0.0
    for name, want in theirs.items():
        got = ours[name].numpy().astype(np.float64)
        scale = max(np.linalg.norm(want), 1e-6 * total)
        worst = max(worst, float(np.linalg.norm(got - want) / scale))
    return worst


@pytest.mark.parametrize("name", ["ada64", "init32"])
def test_each_phase_matches_the_original(name):
    folder = Path(FIXTURES)
    if not (folder / f"step_{name}.npz").exists():
        pytest.fail(f"{folder / f'step_{name}.npz'} is missing: run official_step_fixtures.py into {folder}")
    ref = np.load(folder / f"step_{name}.npz")
    ck = load_checkpoint(folder / f"{name}.pkl")
    real, z_G, z_D = (torch.from_numpy(ref[k]) for k in ("real", "z_G", "z_D"))
    report = {}
    for phase in PHASES:
        tr = _trainer(ck, ref)
        z = z_D if phase[0] == "D" else z_G
        pl_randn = torch.from_numpy(ref["pl_randn"]) if phase == "Greg" else None
        loss = float(tr.gradients(phase, real, z, pl_randn=pl_randn)[0])
        want = float(ref[f"{phase}/loss"])
        loss_diff = abs(loss - want) / abs(want)
        grad_diff = _worst_gradient_difference(phase, tr, ref)
        w_avg_diff = float(np.abs(tr.G.mapping.w_avg.numpy() - ref[f"{phase}/w_avg_after"]).max())
        report[phase] = dict(loss=loss_diff, grad=grad_diff, w_avg=w_avg_diff)
        if phase == "Greg":
            want_pl = float(ref["pl_mean_after"])
            report[phase]["pl_mean"] = abs(float(tr.pl_mean) - want_pl) / want_pl
    print(name, "worst relative difference per phase:",
          {p: {k: f"{v:.2e}" for k, v in r.items()} for p, r in report.items()})
    for phase, r in report.items():
        assert r["loss"] <= 1e-4 and r["grad"] <= 1e-3, (phase, r)
        assert r["w_avg"] <= 1e-5, (phase, r)
    assert report["Greg"]["pl_mean"] <= 1e-4, report["Greg"]
    for net in ("G", "D"):
        opt = getattr(_trainer(ck, ref), f"opt_{net}").param_groups[0]
        assert opt["lr"] == pytest.approx(float(ref[f"opt/{net}/lr"]), rel=1e-12)
        assert opt["betas"] == pytest.approx(tuple(ref[f"opt/{net}/betas"]), rel=1e-12)
        assert opt["eps"] == float(ref[f"opt/{net}/eps"])
