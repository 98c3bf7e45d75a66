"""One StyleGAN2-ADA training step, phase by phase as the original loop runs it (the loop: train.py).

A step (what the UI counts) trains on one batch of reals in four phases, each its own Adam step:

    Gmain  every step                G    softplus(-D(G(z)))
    Greg   every pl_interval steps   G    path length on half the batch, its own G pass, gain pl_interval
    Dmain  every step                D    softplus(D(G(z))) + softplus(-D(x))
    Dreg   every r1_interval steps   D    R1: r1_gamma / 2 |dD(x)/dx|^2, gain r1_interval

then G_ema and ADA's p. Each network's Adam has lr and betas scaled by k / (k + 1) (k: its
regularisation interval; G's by 4 even with path length off), as lazy regularisation assumes.
The mapping network updates w_avg in every pass of G (as in the original's train mode).

Randomness (z, noise, style mixing, augmentation) comes from the run's own torch.Generator on
its device, saved with every snapshot: nothing else in the process can change a run, and a
resumed run continues exactly. Statistics stay on the device until read_stats() (one sync).
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from . import losses
from .augment import AdaController, AdaptiveAugment, diffaugment
from .train_config import TrainConfig

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")
FP16_RESOLUTIONS, FP16_CONV_CLAMP = 4, 256  # the original's mixed precision: top 4 resolutions, clamp 256
BF16_CPU_LOWEST = 8
CPU_AUTO_PRECISION = "fp32"


def resolve_device(name: str) -> torch.device:
    """'auto': CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("Apple's MPS was requested but is not available")
    return device


def resolve_precision(requested: str, device: torch.device) -> str:
    """fp32; fp16 (the original's: CUDA only); bf16 (autocast in the high-resolution blocks, fp32
    master weights: CUDA and CPU); 'auto' per device."""
    if requested == "auto":
        return {"cuda": "fp16", "cpu": CPU_AUTO_PRECISION}.get(device.type, "fp32")
    if requested == "fp16" and device.type != "cuda":
        raise ValueError(f"precision fp16 runs on CUDA only (as the original); on {device.type} use bf16 or fp32")
    if requested == "bf16" and device.type not in ("cuda", "cpu"):
        raise ValueError(f"precision bf16 runs on CUDA and the CPU; on {device.type} use fp32")
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bf16: use fp16 or fp32")
    return requested


def auto_batch(resolution: int, device: torch.device) -> int:
    """StyleGAN2-ADA's min(4096 // res, 32) on a GPU; smaller on a CPU, where steps are slow."""
    if device.type == "cuda":
        return max(4, min(4096 // resolution, 32))
    return max(4, min(2048 // resolution, 16))


def step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def low_precision_blocks(net, lowest: int) -> None:
    """Mark the blocks of G.synthesis or D at ``lowest`` px and above as reduced-precision blocks
    (the original's use_fp16): fp16 casts there, or bf16 autocast (see precision)."""
    blocks = net.synthesis if hasattr(net, "synthesis") else net
    for res in blocks.block_resolutions:
        block = getattr(blocks, f"b{res}")
        block.use_fp16 = block.use_fp16 or res >= lowest


def use_fp16_blocks(net, count: int = FP16_RESOLUTIONS, clamp: float = FP16_CONV_CLAMP) -> None:
    """The original's mixed precision: the ``count`` highest resolutions of G.synthesis or D in
    fp16 (never the 4x4 block), every conv clamped (layers without a clamp get ``clamp``)."""
    low_precision_blocks(net, max(net.img_resolution // 2 ** (count - 1), 8))
    for module in net.modules():
        if getattr(module, "conv_clamp", 0) is None and module is not getattr(net, "b4", None):
            module.conv_clamp = clamp
    net.init_kwargs.update(num_fp16_res=max(net.init_kwargs.get("num_fp16_res") or 0, count),
                           conv_clamp=net.init_kwargs.get("conv_clamp") or clamp)


def bf16_lowest_resolution(net, device: torch.device) -> int:
    """Blocks from this resolution up run under bf16 autocast: the original's fp16 blocks on CUDA;
    on the CPU every block but the 4x4 one (which the original never runs in low precision either;
    oneDNN's bf16 convolutions are 1.3-2x faster than fp32's here at every size: docs/benchmarks.md)."""
    if device.type == "cuda":
        return max(net.img_resolution // 2 ** (FP16_RESOLUTIONS - 1), 8)
    return BF16_CPU_LOWEST


class Trainer:
    """G, D, G_ema with their optimisers, augmentation, the run's random generator and counters."""

    def __init__(self, cfg: TrainConfig, G, D, G_ema=None, *, device: torch.device, batch: int,
                 batch_gpu: int | None = None, log=None):
        self.cfg, self.device, self.batch = cfg, device, batch
        self.batch_gpu = batch_gpu or batch
        self.log = log or (lambda line: None)
        self.G = G.to(device).train().requires_grad_(False)
        self.D = D.to(device).train().requires_grad_(False)
        self.G_ema = (G_ema if G_ema is not None else copy.deepcopy(G)).to(device).eval().requires_grad_(False)
        self.resolution = G.img_resolution
        self.step = 0
        self.run_nimg = 0  # images seen in this run (for EMA ramp-up)
        self.r1_gamma = cfg.r1_gamma if cfg.r1_gamma >= 0 else losses.auto_r1_gamma(self.resolution, batch)
        self.ema_kimg = cfg.ema_kimg if cfg.ema_kimg >= 0 else 10 * batch / 32
        self.pl_mean = torch.zeros([], device=device)
        self.frozen_d = self.D.layer_names()[:cfg.freeze_d]
        base_lr = 0.002 if self.resolution >= 1024 else 0.0025
        lr, betas = losses.lazy_adam_params(cfg.lr_g or base_lr, (0.0, 0.99), cfg.pl_interval)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas, eps=1e-8)
        lr, betas = losses.lazy_adam_params(cfg.lr_d or base_lr, (0.0, 0.99), cfg.r1_interval)
        self.opt_D = torch.optim.Adam(self._trainable(self.D), lr=lr, betas=betas, eps=1e-8)
        self.augment = AdaptiveAugment().to(device) if cfg.aug == "ada" else None
        self.ada = AdaController(self.augment, ada_target=cfg.ada_target, ada_interval=cfg.ada_interval,
                                 ada_kimg=cfg.ada_kimg) if self.augment is not None else None
        self.gen = torch.Generator(device).manual_seed(cfg.seed)
        # Comparing a phase with the original's: "const" noise, and its memory layout (channels_last
        # False): the layout changes float rounding, which can flip the odd leaky-ReLU input near 0.
        self.noise_mode, self.channels_last = "random", None
        self.precision = resolve_precision(cfg.precision, device)
        if self.precision == "fp16":
            for net in (self.G, self.D, self.G_ema):
                use_fp16_blocks(net)
        elif self.precision == "bf16":  # G and D only: G_ema and the saved architecture stay as they were
            for net in (self.G, self.D):
                low_precision_blocks(net, bf16_lowest_resolution(net, device))
        self.force_fp32 = self.precision != "fp16"
        self.bf16 = self.precision == "bf16"
        self.compiled_D = self._compiled(self.D) if cfg.compile else None
        self._stats: dict[str, list] = {}
        self._ada_logits: list[torch.Tensor] = []

    def _trainable(self, net) -> list:
        """The parameters a phase trains: all of G; D's but those of its Freeze-D layers."""
        if net is self.G:
            return list(net.parameters())
        frozen = tuple(name + "." for name in self.frozen_d)
        return [p for name, p in net.named_parameters() if not name.startswith(frozen)]

    def _compiled(self, net):
        """``net``'s forward through torch.compile, for the passes without a second derivative
        (torch.compile has no double backward: Dreg runs eagerly), or None where no compiler
        works on this machine (said in the log). G is not compiled: its noise comes from the run's
        generator, which torch.compile cannot trace."""
        try:
            probe = torch.ones(2, device=self.device, requires_grad=True)
            torch.compile(lambda x: (x * 2).sin(), dynamic=False)(probe).sum().backward()
        except Exception as e:  # noqa: BLE001 - no C++ compiler, no Triton, an unsupported device...
            self.log(f"compile: torch.compile does not work here ({str(e).strip().splitlines()[0][:200]}); "
                     "training runs without it")
            return None
        return torch.compile(lambda img: net(img, None, force_fp32=self.force_fp32, channels_last=self.channels_last,
                                             bf16=self.bf16), dynamic=False)

    # ---- one step -----------------------------------------------------------------------------
    def train_step(self, reals: torch.Tensor) -> None:
        """reals: [batch, C, R, R] in [-1, 1] on the device. Statistics: read_stats()."""
        z = torch.randn([len(PHASES), self.batch, self.G.z_dim], device=self.device, generator=self.gen)
        self._phase("Gmain", reals, z[0])
        if self.cfg.pl_weight > 0 and self.step % self.cfg.pl_interval == 0:
            self._phase("Greg", reals, z[1])
        self._phase("Dmain", reals, z[2])
        if self.r1_gamma > 0 and self.step % self.cfg.r1_interval == 0:
            self._phase("Dreg", reals, z[3])
        self._update_ema()
        self.step += 1
        self.run_nimg += self.batch
        if self.ada is not None:
            self.ada.update(self.batch)

    def _phase(self, name: str, reals: torch.Tensor, z: torch.Tensor) -> None:
        """Accumulate one phase's gradients over the batch in passes of batch_gpu, then one Adam step.

        Out of GPU memory in a pass (automatic batch_gpu only): the phase's gradients and what its
        passes changed (w_avg, pl_mean, the random stream) are put back and the phase runs again in
        passes half the size. No update is applied before a phase completes, so none twice."""
        net, opt = (self.G, self.opt_G) if name[0] == "G" else (self.D, self.opt_D)
        loss = self.gradients(name, reals, z)
        for p in net.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        self._record(name, loss)
        for logits in self._ada_logits if self.ada is not None else ():
            self.ada.accumulate(logits)

    def gradients(self, name: str, reals: torch.Tensor, z: torch.Tensor,
                  pl_randn: torch.Tensor | None = None) -> torch.Tensor:
        """The phase's gradients in .grad of its network (from zero), accumulated over the batch in
        passes of batch_gpu; returns its loss (gain included, detached). pl_randn: one pass only."""
        net, opt = (self.G, self.opt_G) if name[0] == "G" else (self.D, self.opt_D)
        gain = {"Greg": self.cfg.pl_interval, "Dreg": self.cfg.r1_interval}.get(name, 1)
        for p in self._trainable(net):
            p.requires_grad_(True)
        saved = (self.G.mapping.w_avg.clone(), self.pl_mean, self.gen.get_state())
        while True:
            opt.zero_grad(set_to_none=True)
            self._ada_logits.clear()
            try:
                values = [self.accumulate(name, r, zc, gain=gain * len(r) / self.batch, pl_randn=pl_randn)
                          for r, zc in zip(reals.split(self.batch_gpu), z.split(self.batch_gpu))]
                break
            except torch.cuda.OutOfMemoryError:
                half = self.batch_gpu // 2
                if self.cfg.batch_gpu or half < 4 or self.batch % half:
                    raise
                self.G.mapping.w_avg.copy_(saved[0])
                self.pl_mean = saved[1]
                self.gen.set_state(saved[2])
                self._fewer_images_per_pass(half)
        net.requires_grad_(False)
        return torch.cat(values).mean() * gain

    def _fewer_images_per_pass(self, half: int) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.batch_gpu = half
        self.log(f"out of GPU memory: {half} images per pass, {self.batch // half} passes per step")

    def accumulate(self, phase: str, real: torch.Tensor, z: torch.Tensor, *, gain: float = 1.0,
                   pl_randn: torch.Tensor | None = None) -> torch.Tensor:
        """Backpropagate one pass of ``phase`` into .grad (the original's accumulate_gradients):
        mean(loss) * gain. Returns the per-sample loss terms (detached): Gmain/Dmain the logistic
        losses, Greg pl_weight * penalty, Dreg r1_gamma / 2 * |grad|^2. ``pl_randn``: Greg's noise
        (default: drawn from the run's generator)."""
        if phase == "Gmain":
            img, _ = self._run_G(z)
            loss = losses.g_nonsaturating(self._run_D(img))
            loss.mean().mul(gain).backward()
        elif phase == "Greg":
            img, ws = self._run_G(z[:max(len(z) // 2, 1)])
            if pl_randn is None:
                pl_randn = torch.randn(img.shape, device=self.device, generator=self.gen)
            penalty, pl_mean = losses.path_length_penalty(img, ws, self.pl_mean, pl_randn)
            self.pl_mean = pl_mean.detach()
            loss = penalty * self.cfg.pl_weight
            (img[:, 0, 0, 0] * 0 + loss).mean().mul(gain).backward()  # as the original: every parameter
            # gets a gradient (zero where it has no effect), so Adam treats them all alike
        elif phase == "Dmain":
            with torch.no_grad():
                fake, _ = self._run_G(z)
            loss_fake = losses.d_fake(self._run_D(fake))
            loss_fake.mean().mul(gain).backward()
            real_logits = self._run_D(real)
            self._ada_logits.append(real_logits.detach())
            loss_real = losses.d_real(real_logits)
            loss_real.mean().mul(gain).backward()
            loss = loss_fake + loss_real
        elif phase == "Dreg":
            real = real.detach().requires_grad_(True)
            real_logits = self._run_D(real, second_order=True)
            self._ada_logits.append(real_logits.detach())
            loss = losses.r1_penalty(real_logits, real) * (self.r1_gamma / 2)
            (real_logits.flatten() * 0 + loss).mean().mul(gain).backward()
        else:
            raise ValueError(f"unknown phase {phase!r}: one of {', '.join(PHASES)}")
        return loss.detach()

    def _run_G(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [N, C, R, R] (float32) and the ws they came from, with style mixing."""
        G, gen = self.G, self.gen
        ws = G.mapping(z, None, update_w_avg=True)  # [N, num_ws, w_dim]; the mapping runs in fp32
        if self.cfg.style_mixing > 0:  # on the device, no sync: cutoff = num_ws means no mixing
            cutoff = torch.randint(1, ws.shape[1], [], device=self.device, generator=gen)
            mixing = torch.rand([], device=self.device, generator=gen) < self.cfg.style_mixing
            cutoff = torch.where(mixing, cutoff, ws.shape[1])
            ws2 = G.mapping(torch.randn(z.shape, device=self.device, generator=gen), None)
            later = torch.arange(ws.shape[1], device=self.device)[None, :, None] >= cutoff
            ws = torch.where(later, ws2, ws)
        img = G.synthesize(ws, noise_mode=self.noise_mode, fused=False, force_fp32=self.force_fp32,
                           channels_last=self.channels_last, noise_generator=gen, bf16=self.bf16)
        return img.float(), ws

    def _run_D(self, img: torch.Tensor, second_order: bool = False) -> torch.Tensor:
        if self.cfg.aug == "ada" and (self.ada.p if self.ada is not None else float(self.augment.p)) > 0:
            img = self.augment(img, self.gen)  # p is read on the host; the warp waits for the device, as the original's
        elif self.cfg.aug == "diffaugment":
            img = diffaugment(img, self.cfg.diffaugment_policy, self.gen)
        if self.compiled_D is not None and not second_order:
            return self.compiled_D(img).float()
        return self.D(img, None, force_fp32=self.force_fp32, channels_last=self.channels_last, bf16=self.bf16).float()

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

    # ---- statistics: on the device until read -----------------------------------------------------
    STAT_NAMES = {"Gmain": "loss_G", "Greg": "pl", "Dmain": "loss_D", "Dreg": "r1"}

    def _record(self, phase: str, loss: torch.Tensor) -> None:
        value = loss
        if phase == "Dreg":
            value = loss / (self.cfg.r1_interval * self.r1_gamma / 2)  # the R1 penalty itself, as logged before
        elif phase == "Greg":
            value = loss / (self.cfg.pl_interval * self.cfg.pl_weight)  # the path length penalty
        self._stats.setdefault(self.STAT_NAMES[phase], []).append(value.detach())

    def read_stats(self, reset: bool = True) -> dict:
        """Means of each statistic since the last reset (one device sync), and ADA's p."""
        names = list(self._stats)
        means = torch.stack([torch.stack(self._stats[n]).mean() for n in names]).tolist() if names else []
        if reset:
            self._stats = {}
        out = dict(zip(names, means))
        if self.ada is not None:
            out["ada_p"] = self.ada.p
        return out

    # ---- state for exact resume ----------------------------------------------------------------
    def extra_tensors(self) -> dict[str, torch.Tensor]:
        out = {"train.pl_mean": self.pl_mean.detach().cpu().reshape(1), "train.rng": self.gen.get_state()}
        for prefix, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            for idx, state in opt.state_dict()["state"].items():
                for key, value in state.items():
                    out[f"{prefix}.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().reshape(-1).clone() \
                        if key == "step" else value.detach().cpu().contiguous()
        return out

    def counters(self) -> dict:
        return {"step": self.step, "run_nimg": self.run_nimg, "rng_device": self.device.type,
                "ada": self.ada.state_dict() if self.ada is not None else None}

    def load_state(self, tensors: dict[str, torch.Tensor], counters: dict) -> None:
        self.step, self.run_nimg = int(counters["step"]), int(counters["run_nimg"])
        if self.ada is not None and counters.get("ada"):
            self.ada.load_state_dict(counters["ada"])
        self.pl_mean = tensors["train.pl_mean"].to(self.device).reshape([])
        if "train.rng" in tensors and counters.get("rng_device") == self.device.type:
            self.gen.set_state(tensors["train.rng"])
        else:  # a state from before the run owned its generator, or from another kind of device
            self.gen.manual_seed(step_seed(self.cfg.seed, self.step))
            self.log("the random stream is re-seeded (the saved one belongs to another kind of device)")
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
                "betas_G": list(self.opt_G.param_groups[0]["betas"]),
                "betas_D": list(self.opt_D.param_groups[0]["betas"]),
                "r1_gamma": self.r1_gamma, "ema_kimg": self.ema_kimg, "batch": self.batch,
                "batch_gpu": self.batch_gpu, "frozen_d": self.frozen_d, "device": str(self.device),
                "precision": self.precision, "compiled": self.compiled_D is not None}
