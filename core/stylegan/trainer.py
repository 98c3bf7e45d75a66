"""One StyleGAN2-ADA training step and the state it needs (the loop lives in train.py).

A step is one G update and one D update on one batch, as the UI counts "training steps".
Lazy R1 is folded into the D update every r1_interval steps (and path length into the G update
every pl_interval steps), with Adam's lr and betas scaled by k/(k+1) as in StyleGAN2.
Randomness is drawn from generators seeded by (seed, step), so a resumed run continues exactly
as an uninterrupted one would, without saving RNG states.
"""
from __future__ import annotations

import copy
from contextlib import nullcontext

import numpy as np
import torch

from . import losses
from .augment import AdaController, AdaptiveAugment, diffaugment
from .train_config import TrainConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA GPU is available")
    return device


def auto_batch(resolution: int, device: torch.device) -> int:
    """StyleGAN2-ADA's min(4096 // res, 32) on a GPU; smaller on a CPU, where steps are slow."""
    if device.type == "cuda":
        return max(4, min(4096 // resolution, 32))
    return max(4, min(2048 // resolution, 16))


def step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


class Trainer:
    """G, D, G_ema with their optimisers, augmentation and counters."""

    def __init__(self, cfg: TrainConfig, G, D, G_ema=None, *, device: torch.device, batch: int,
                 batch_gpu: int | None = None):
        self.cfg, self.device, self.batch = cfg, device, batch
        self.batch_gpu = batch_gpu or batch
        self.G = G.to(device).train().requires_grad_(True)
        self.D = D.to(device).train().requires_grad_(True)
        self.G_ema = (G_ema if G_ema is not None else copy.deepcopy(G)).to(device).eval().requires_grad_(False)
        self.resolution = G.img_resolution
        self.step = 0
        self.run_nimg = 0  # images seen in this run (for EMA ramp-up)
        self.r1_gamma = cfg.r1_gamma if cfg.r1_gamma >= 0 else losses.auto_r1_gamma(self.resolution, batch)
        self.ema_kimg = cfg.ema_kimg if cfg.ema_kimg >= 0 else 10 * batch / 32
        self.pl_mean = torch.zeros([], device=device)
        base_lr = 0.002 if self.resolution >= 1024 else 0.0025
        self.frozen_d = self._freeze_d(cfg.freeze_d)
        lr, betas = losses.lazy_adam_params(cfg.lr_g or base_lr, (0.0, 0.99), cfg.pl_interval if cfg.pl_weight > 0 else 1)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas, eps=1e-8)
        lr, betas = losses.lazy_adam_params(cfg.lr_d or base_lr, (0.0, 0.99), cfg.r1_interval if self.r1_gamma > 0 else 1)
        self.opt_D = torch.optim.Adam([p for p in self.D.parameters() if p.requires_grad], lr=lr, betas=betas, eps=1e-8)
        self.augment = AdaptiveAugment().to(device) if cfg.aug == "ada" else None
        self.ada = AdaController(self.augment, ada_target=cfg.ada_target, ada_interval=cfg.ada_interval,
                                 ada_kimg=cfg.ada_kimg) if self.augment is not None else None
        self.autocast = self._autocast_context()
        self.force_fp32 = device.type != "cuda" or cfg.precision in ("fp32", "bf16")

    def _freeze_d(self, n: int) -> list[str]:
        frozen = self.D.layer_names()[:n]
        for name in frozen:
            self.D.get_submodule(name).requires_grad_(False)
        return frozen

    def _autocast_context(self):
        if self.device.type == "cuda" and self.cfg.precision == "bf16":
            return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext

    # ---- one step ---------------------------------------------------------------------------
    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        if self.cfg.aug == "ada":
            return self.augment(images)
        if self.cfg.aug == "diffaugment":
            return diffaugment(images, self.cfg.diffaugment_policy)
        return images

    def _mapping(self, z, update_w_avg: bool):
        G = self.G
        ws = G.mapping(z, None, update_w_avg=update_w_avg)  # [N, num_ws, w_dim]
        if self.cfg.style_mixing > 0 and torch.rand([]).item() < self.cfg.style_mixing:
            cutoff = int(torch.randint(1, ws.shape[1], []).item())
            ws2 = G.mapping(torch.randn_like(z), None)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
        return ws

    def _generate(self, n: int, update_w_avg: bool = False):
        z = torch.randn(n, self.G.z_dim, device=self.device)
        ws = self._mapping(z, update_w_avg)
        img = self.G.synthesize(ws, noise_mode="random", fused=False, force_fp32=self.force_fp32)
        return img, ws

    def _d(self, img):
        return self.D(self._augment(img), None, force_fp32=self.force_fp32)

    def train_step(self, reals: torch.Tensor) -> dict:
        """reals: [batch, C, R, R] float in [-1, 1] on the device. Returns this step's stats."""
        torch.manual_seed(step_seed(self.cfg.seed, self.step))
        stats = {}
        chunks = reals.split(self.batch_gpu)
        do_pl = self.cfg.pl_weight > 0 and self.step % self.cfg.pl_interval == 0
        do_r1 = self.r1_gamma > 0 and self.step % self.cfg.r1_interval == 0

        # G update: non-saturating loss on fakes (+ lazy path length).
        self.D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        g_loss_sum = 0.0
        for chunk in chunks:
            with self.autocast():
                fake, ws = self._generate(len(chunk), update_w_avg=True)
                loss = losses.g_nonsaturating(self._d(fake))
                if do_pl:
                    penalty, self.pl_mean = losses.path_length_penalty(fake, ws, self.pl_mean)
                    loss = loss + penalty.mean() * self.cfg.pl_weight * self.cfg.pl_interval
            (loss * len(chunk) / self.batch).backward()
            g_loss_sum += float(loss.detach()) * len(chunk)
        self._finite_grads(self.G)
        self.opt_G.step()
        stats["loss_G"] = g_loss_sum / self.batch

        # D update: logistic loss on fakes and reals (+ lazy R1 on reals).
        self.D.requires_grad_(True)
        for name in self.frozen_d:
            self.D.get_submodule(name).requires_grad_(False)
        self.opt_D.zero_grad(set_to_none=True)
        d_loss_sum = r1_sum = 0.0
        for chunk in chunks:
            with self.autocast():
                with torch.no_grad():
                    fake, _ = self._generate(len(chunk))
                real = chunk.detach().requires_grad_(do_r1)
                real_logits = self._d(real)
                loss = losses.d_logistic(real_logits, self._d(fake))
                if do_r1:
                    r1 = losses.r1_penalty(real_logits, real)
                    loss = loss + r1.mean() * (self.r1_gamma / 2) * self.cfg.r1_interval
                    r1_sum += float(r1.mean().detach()) * len(chunk)
            (loss * len(chunk) / self.batch).backward()
            d_loss_sum += float(loss.detach()) * len(chunk)
            if self.ada is not None:
                self.ada.accumulate(real_logits)
        self._finite_grads(self.D)
        self.opt_D.step()
        stats["loss_D"] = d_loss_sum / self.batch
        if do_r1:
            stats["r1"] = r1_sum / self.batch

        self._update_ema()
        if self.ada is not None:
            stats["ada_p"] = self.ada.update(self.batch)
        self.step += 1
        self.run_nimg += self.batch
        return stats

    @staticmethod
    def _finite_grads(net) -> None:
        for p in net.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_nimg = self.ema_kimg * 1000
        if self.cfg.ema_rampup > 0:
            ema_nimg = min(ema_nimg, self.run_nimg * self.cfg.ema_rampup)
        beta = 0.5 ** (self.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ---- state for exact resume ----------------------------------------------------------------
    def extra_tensors(self) -> dict[str, torch.Tensor]:
        out = {"train.pl_mean": self.pl_mean.detach().cpu().reshape(1)}
        for prefix, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            for idx, state in opt.state_dict()["state"].items():
                for key, value in state.items():
                    out[f"{prefix}.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().reshape(-1).clone() \
                        if key == "step" else value.detach().cpu().contiguous()
        return out

    def counters(self) -> dict:
        return {"step": self.step, "run_nimg": self.run_nimg,
                "ada": self.ada.state_dict() if self.ada is not None else None}

    def load_state(self, tensors: dict[str, torch.Tensor], counters: dict) -> None:
        self.step, self.run_nimg = int(counters["step"]), int(counters["run_nimg"])
        if self.ada is not None and counters.get("ada"):
            self.ada.load_state_dict(counters["ada"])
        self.pl_mean = tensors["train.pl_mean"].to(self.device).reshape([])
        for prefix, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            sd = opt.state_dict()
            for idx in range(sum(len(g["params"]) for g in sd["param_groups"])):
                keys = [k for k in ("step", "exp_avg", "exp_avg_sq") if f"{prefix}.{idx}.{k}" in tensors]
                if keys:
                    sd["state"][idx] = {k: tensors[f"{prefix}.{idx}.{k}"].reshape([]) if k == "step"
                                        else tensors[f"{prefix}.{idx}.{k}"].to(self.device) for k in keys}
            opt.load_state_dict(sd)

    def lr_info(self) -> dict:
        return {"lr_G": self.opt_G.param_groups[0]["lr"], "lr_D": self.opt_D.param_groups[0]["lr"],
                "r1_gamma": self.r1_gamma, "ema_kimg": self.ema_kimg, "batch": self.batch,
                "batch_gpu": self.batch_gpu, "frozen_d": self.frozen_d, "device": str(self.device)}
