"""Training speed: images/s of Atelier's training step in each precision, against the original's
Gmain + Dmain step on the same weights, in the same run.

    python bench/train.py [--resolution 64] [--batch 16] [--steps 5] [--precisions fp32,bf16]
                          [--compile] [--official CHECKOUT]

Default config: 64 px, channel_base 4096, channel_max 256, 8 mapping layers, batch 16, on the CPU
(256 px config F on CUDA). Every variant starts from the same weights; the variants run in turn,
round after round, so that a drift in the machine's speed touches them alike; medians of wall and
of process CPU time are printed (on a shared machine the CPU time is the steadier measure).
Atelier's step is timed whole (Gmain, Dmain, Adam, G EMA, ADA at p = 0 as where it starts); a
step with lazy R1 (Dreg, every 16 steps) is timed apart and amortised:
img/s = batch / ((15 plain steps + 1 R1 step) / 16). With --official, the original's Gmain and
Dmain phases and Adam steps (no R1, no EMA: less work) are timed on the same weights; ratios
are against it. --compile adds each precision with D compiled (compile time not counted).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, median, official_networks, timeit_rounds  # noqa: E402
from core.stylegan.networks import Discriminator, Generator  # noqa: E402
from core.stylegan.train_config import TrainConfig  # noqa: E402
from core.stylegan.trainer import Trainer  # noqa: E402


def official_step_fn(checkout, G_sd, D_sd, kw, batch, device, ada_p=0.0):
    N = official_networks(checkout)
    from training.loss import StyleGAN2Loss
    G = N.Generator(c_dim=0, **kw["g"]).to(device).train()
    D = N.Discriminator(c_dim=0, **kw["d"]).to(device).train()
    G.load_state_dict(G_sd)
    D.load_state_dict(D_sd)
    pipe = None
    if ada_p > 0:  # its 'bgc' pipeline (needs scipy in the checkout's environment)
        from training.augment import AugmentPipe
        pipe = AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1,
                           contrast=1, lumaflip=1, hue=1, saturation=1).to(device)
        pipe.p.copy_(torch.tensor(ada_p))
    loss = StyleGAN2Loss(device, G.mapping, G.synthesis, D, augment_pipe=pipe, r1_gamma=0, pl_weight=0)
    opt_G = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0.0, 0.99))
    opt_D = torch.optim.Adam(D.parameters(), lr=0.0025, betas=(0.0, 0.99))
    reals = torch.rand(batch, 3, kw["res"], kw["res"], device=device) * 2 - 1
    c = torch.zeros(batch, 0, device=device)

    def step():
        for phase, net, opt in (("Gmain", G, opt_G), ("Dmain", D, opt_D)):
            net.requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            loss.accumulate_gradients(phase, reals, c, torch.randn(batch, kw["g"]["z_dim"], device=device), c,
                                      sync=True, gain=1)
            net.requires_grad_(False)
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return step


def atelier_step_fns(G, D, cfg: TrainConfig, device, batch, reals, ada_p):
    """(plain step, step with lazy R1) of a trainer of its own on copies of G and D."""
    tr = Trainer(cfg, copy.deepcopy(G), copy.deepcopy(D), device=device, batch=batch)
    if ada_p > 0:
        tr.augment.p.fill_(ada_p)
        tr.ada = None  # held, not adapted

    def run(step):
        tr.step = step  # 0: Gmain, Dmain and Dreg; 1: no regulariser
        tr.train_step(reals)
        tr.read_stats()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return (lambda: run(1)), (lambda: run(0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--resolution", type=int, default=0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="timed rounds (plain steps; R1 steps: about half)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--compile", action="store_true", help="also each precision with torch.compile of D")
    ap.add_argument("--official")
    ap.add_argument("--ada-p", type=float, default=0.0, help="hold the augmentation probability here (default 0: "
                                                                "where ADA starts, so no augmentation runs)")
    a = ap.parse_args()
    device = torch.device(a.device)
    res = a.resolution or (256 if device.type == "cuda" else 64)
    base, cmax = (32768, 512) if device.type == "cuda" else (4096, 256)
    print(f"# {machine()}; device {device}; {res} px, channel_base {base}, channel_max {cmax}, batch {a.batch}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    torch.manual_seed(0)
    G = Generator(z_dim=512, w_dim=512, img_resolution=res, img_channels=3, mapping_layers=8, channel_base=base,
                  channel_max=cmax)
    D = Discriminator(img_resolution=res, channel_base=base, channel_max=cmax)
    reals = torch.rand(a.batch, 3, res, res, device=device) * 2 - 1
    plain, with_r1 = {}, {}
    if a.official:
        kw = dict(res=res, g=dict(z_dim=512, w_dim=512, img_resolution=res, img_channels=3,
                                  mapping_kwargs=dict(num_layers=8),
                                  synthesis_kwargs=dict(channel_base=base, channel_max=cmax, conv_clamp=256)),
                  d=dict(img_resolution=res, img_channels=3, channel_base=base, channel_max=cmax, conv_clamp=256))
        plain["official"] = official_step_fn(a.official, G.state_dict(), D.state_dict(), kw, a.batch, device,
                                             ada_p=a.ada_p)
    for precision in a.precisions.split(","):
        for compiled in (False, True) if a.compile else (False,):
            name = precision + (" +compile" if compiled else "")
            cfg = TrainConfig(batch=a.batch, aug="ada", device=str(device), precision=precision, compile=compiled)
            plain[name], with_r1[name] = atelier_step_fns(G, D, cfg, device, a.batch, reals, a.ada_p)
    t_plain = timeit_rounds(plain, repeat=a.steps, warmup=1)
    t_r1 = timeit_rounds(with_r1, repeat=max(a.steps // 2, 1), warmup=0)
    for clock in ("wall", "cpu"):
        ref = a.batch / median(t_plain["official"][clock]) if a.official else None
        print(f"\n{clock} time   s/step   s/step(R1)  img/s (R1 amortised)" + ("  vs official" if ref else ""))
        if ref:
            print(f"{'official':<16} {median(t_plain['official'][clock]):7.3f}   {'-':>9}  {ref:8.2f}  "
                  "(Gmain+Dmain, no R1)")
        for name in with_r1:
            s, s_r1 = median(t_plain[name][clock]), median(t_r1[name][clock])
            ips = a.batch / ((15 * s + s_r1) / 16)
            print(f"{name:<16} {s:7.3f}   {s_r1:9.3f}  {ips:8.2f}" + (f"  {ips / ref:.2f}x" if ref else ""))
    print(f"# load average after: {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
