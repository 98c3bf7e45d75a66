"""Generator inference speed: images/s at 256 px config F (channel_base 32768, 8 mapping layers).

    python bench/generator.py [--batches 1,8] [--repeat 5] [--official CHECKOUT] [--device cpu|cuda]

Prints the median images/s of Atelier's G per batch size (and of the official implementation's
batched forward from a local checkout when --official is given, with the ratio).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, median, official_networks, timeit, timeit_pairs  # noqa: E402
from core.stylegan.networks import Generator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--official", help="checkout of NVlabs/stylegan2-ada-pytorch to time beside")
    a = ap.parse_args()
    device = torch.device(a.device)
    print(f"# {machine()}; device {device}; threads {torch.get_num_threads()}")
    torch.manual_seed(0)
    kw = dict(z_dim=512, w_dim=512, img_resolution=a.resolution, img_channels=3)
    ours = Generator(**kw, mapping_layers=8, channel_base=32768, channel_max=512, num_fp16_res=4).eval().to(device)
    theirs = None
    if a.official:
        N = official_networks(a.official)
        theirs = N.Generator(c_dim=0, **kw, mapping_kwargs=dict(num_layers=8),
                             synthesis_kwargs=dict(channel_base=32768, channel_max=512, num_fp16_res=4,
                                                   conv_clamp=256)).eval().to(device)
        theirs.load_state_dict(ours.state_dict())
    for batch in [int(b) for b in a.batches.split(",")]:
        z = torch.randn(batch, 512, device=device)

        def run_ours():
            with torch.inference_mode():
                ours(z, noise_mode="const")
            if device.type == "cuda":
                torch.cuda.synchronize()

        if theirs is None:
            print(f"batch {batch}: atelier {batch / median(timeit(run_ours, repeat=a.repeat)):.2f} img/s", flush=True)
            continue

        def run_theirs():
            with torch.inference_mode():
                theirs(z, None, noise_mode="const", force_fp32=device.type != "cuda")
            if device.type == "cuda":
                torch.cuda.synchronize()
        t_ours, t_theirs = timeit_pairs(run_ours, run_theirs, repeat=a.repeat)
        ratios = sorted(b / a_ for a_, b in zip(t_ours, t_theirs))
        print(f"batch {batch}: atelier {batch / median(t_ours):.2f} img/s | official {batch / median(t_theirs):.2f} img/s"
              f" | ratio {median(ratios):.2f}x (pairs {ratios[0]:.2f}-{ratios[-1]:.2f})", flush=True)


if __name__ == "__main__":
    main()
