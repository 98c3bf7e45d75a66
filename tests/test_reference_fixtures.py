"""Outputs of loaded checkpoints vs the original implementations, on files those made.

The files come from /work/shared/reference (official_fixtures.py, rosinality_fixtures.py) and
cannot be in CI (they embed research-only source code): point ATELIER_REFERENCE_FIXTURES at the
folder that holds them to run this check.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from core.stylegan import load_checkpoint

FIXTURES = os.environ.get("ATELIER_REFERENCE_FIXTURES")
NAMES = ["ada64", "ada128", "init32", "sg3_32", "rosi64"]
pytestmark = pytest.mark.skipif(not FIXTURES, reason="ATELIER_REFERENCE_FIXTURES is not set (reference files "
                                "are made locally from the original code; see /work/shared/reference/README.md)")


@pytest.mark.parametrize("name", NAMES)
def test_outputs_match_the_original_code(name):
    folder = Path(FIXTURES)
    path = folder / (f"{name}.pt" if name.startswith("rosi") else f"{name}.pkl")
    if not path.exists():
        pytest.fail(f"{path} is missing: run the reference fixture scripts into {folder}")
    ref = np.load(folder / f"{name}.npz")
    ck = load_checkpoint(path)
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        img1 = ck.G_ema(z, None, truncation_psi=1.0, noise_mode="const").numpy()
        img7 = ck.G_ema(z, None, truncation_psi=0.7, noise_mode="const").numpy()
        logits = ck.D(torch.from_numpy(ref["d_input"]), None).numpy()
    tol = 1e-3 * float(np.abs(ref["img_psi1"]).max())
    diffs = {"psi1": float(np.abs(img1 - ref["img_psi1"]).max()), "psi07": float(np.abs(img7 - ref["img_psi07"]).max()),
             "D": float(np.abs(logits - ref["d_logits"]).max())}
    print(name, diffs, "tolerance", tol)
    assert diffs["psi1"] <= tol and diffs["psi07"] <= tol, diffs
    assert diffs["D"] <= 1e-3 * max(1.0, float(np.abs(ref["d_logits"]).max())), diffs
