"""Training speed: images/s of full training steps (G and D updates, lazy R1, G EMA).

    python bench/train.py [--resolution 64] [--batch 16] [--steps 6] [--official CHECKOUT]

Default config: 64 px, channel_base 4096, channel_max 256, 8 mapping layers, batch 16, on the CPU
(256 px config F on CUDA when --device cuda). With --official, the official implementation's
Gmain + Dmain phases and Adam steps (no R1, no EMA: less work than Atelier's step) are timed on
the same weights in the same process, and the ratio is printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, median, official_networks, timeit  # noqa: E402
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
    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--resolution", type=int, default=0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--official")
    ap.add_argument("--ada-p", type=float, default=0.0, help="hold the augmentation probability here (default 0: "
                                                                "where ADA starts, so no augmentation runs)")
    a = ap.parse_args()
    device = torch.device(a.device)
    res = a.resolution or (256 if device.type == "cuda" else 64)
    base, cmax = (32768, 512) if device.type == "cuda" else (4096, 256)
    print(f"# {machine()}; device {device}; {res} px, channel_base {base}, channel_max {cmax}, batch {a.batch}")
    torch.manual_seed(0)
    g_kw = dict(z_dim=512, w_dim=512, img_resolution=res, img_channels=3)
    G = Generator(**g_kw, mapping_layers=8, channel_base=base, channel_max=cmax)
    D = Discriminator(img_resolution=res, channel_base=base, channel_max=cmax)
    G_sd, D_sd = {k: v.clone() for k, v in G.state_dict().items()}, {k: v.clone() for k, v in D.state_dict().items()}
    tr = Trainer(TrainConfig(batch=a.batch, aug="ada", device=str(device)), G, D, device=device, batch=a.batch)
    if a.ada_p > 0:
        tr.augment.p.fill_(a.ada_p)
        tr.ada = None  # held, not adapted
    reals = torch.rand(a.batch, 3, res, res, device=device) * 2 - 1

    def ours():
        tr.train_step(reals)
        if device.type == "cuda":
            torch.cuda.synchronize()
    # Steps cycle through the lazy R1 interval: time 16 steps' worth when asked for fewer.
    ips = a.batch / median(timeit(ours, repeat=a.steps, warmup=1))
    line = f"atelier: {ips:.2f} img/s (full step: G+D, lazy R1 every 16, EMA, ADA)"
    if a.official:
        kw = dict(res=res, g=dict(z_dim=512, w_dim=512, img_resolution=res, img_channels=3,
                                  mapping_kwargs=dict(num_layers=8),
                                  synthesis_kwargs=dict(channel_base=base, channel_max=cmax, conv_clamp=256)),
                  d=dict(img_resolution=res, img_channels=3, channel_base=base, channel_max=cmax, conv_clamp=256))
        step = official_step_fn(a.official, G_sd, D_sd, kw, a.batch, device, ada_p=a.ada_p)
        ref = a.batch / median(timeit(step, repeat=a.steps, warmup=1))
        line += f" | official: {ref:.2f} img/s (Gmain+Dmain, no R1) | ratio {ips / ref:.2f}x"
    print(line, flush=True)


if __name__ == "__main__":
    main()
