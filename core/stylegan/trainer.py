"""One StyleGAN2-ADA training step, phase by phase as the original loop runs it (the loop: train.py).

A step (what the UI counts) trains on one batch of reals in four phases, each its own Adam step:

    Gmain  every step                G    softplus(-D(G(z)))
    Greg   every pl_interval steps   G    path length on half the batch, its own G pass, gain pl_interval
    Dmain  every step                D    softplus(D(G(z))) + softplus(-D(x))
    Dreg   every r1_interval steps   D    R1: r1_gamma / 2 |dD(x)/dx|^2, gain r1_interval

then G_ema and ADA's p. Each network's Adam has lr and betas scaled by k / (k + 1) (k: its
regularisation interval; G's by 4 even with path length off), as lazy regularisation assumes.
w_avg moves once per phase that runs G (Gmain, Greg, Dmain), by the mean w of the phase's batch,
as the original's train mode does when a phase is one pass.

Randomness (z, noise, style mixing, augmentation) belongs to the samples: each group of
streams.GROUP samples draws from its own generator seeded from (run seed, step, phase, group).
Nothing else in the process can change a run, a resumed run continues exactly, and the
trajectory does not depend on how the batch is cut into passes or processes.

On several processes (distributed.Group) each trains its rows of the global batch; gradients,
statistics, w_avg's and path length's means and ADA's statistic are summed across them, so every
process holds the same weights and one process gives the same run up to float rounding. Where a
phase is cut into passes or processes, w_avg and pl_mean move once per phase with the means over
the whole batch (the original moves them once per pass of each process).
Statistics stay on the device until read_stats() (one sync).
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from . import distributed, losses
from .augment import AdaController, AdaptiveAugment, diffaugment
from .streams import Streams, group_sizes, rank_groups, rank_rows, stream_seed
from .train_config import GROUP, TrainConfig

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")
FP16_RESOLUTIONS, FP16_CONV_CLAMP = 4, 256  # the original's mixed precision: top 4 resolutions, clamp 256
BF16_CPU_LOWEST = 8


def cpu_auto_precision() -> str:
    """bf16 where the CPU computes it natively (AVX512-BF16 or AMX: 1.3-1.6x faster steps than fp32,
    docs/benchmarks.md); elsewhere fp32, as emulated bf16 is slower."""
    cpu = getattr(torch, "cpu", None)
    native = any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported",
                                                                      "_is_amx_tile_supported"))
    return "bf16" if native else "fp32"


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
        return {"cuda": "fp16", "cpu": cpu_auto_precision()}.get(device.type, "fp32")
    if requested == "fp16" and device.type != "cuda":
        raise ValueError(f"precision fp16 runs on CUDA only (as the original); on {device.type} use bf16 or fp32")
    if requested == "bf16" and device.type not in ("cuda", "cpu"):
        raise ValueError(f"precision bf16 runs on CUDA and the CPU; on {device.type} use fp32")
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU has no bf16: use fp16 or fp32")
    return requested


def auto_batch(resolution: int, device: torch.device, processes: int = 1) -> int:
    """StyleGAN2-ADA's min(4096 // res, 32) per GPU; smaller on a CPU, where steps are slow. On
    several processes, that many per process up to 64 in all (as the original), at least
    GROUP per process."""
    per = max(4, min(4096 // resolution, 32)) if device.type == "cuda" else max(4, min(2048 // resolution, 16))
    return max(min(per * processes, max(per, 64)), GROUP * processes)


def low_precision_blocks(net, lowest: int) -> None:
    """Mark the blocks of G.synthesis or D at ``lowest`` px and above as reduced-precision blocks
    (the original's use_fp16): fp16 casts there, or bf16 autocast (see precision)."""
    blocks = net.synthesis if hasattr(net, "synthesis") else net
    for res in blocks.block_resolutions:
        block = getattr(blocks, f"b{res}")
        block.use_fp16 = block.use_fp16 or res >= lowest


def fp16_lowest_resolution(net, count: int = FP16_RESOLUTIONS) -> int:
    """The lowest of the ``count`` highest resolutions of ``net`` (never the 4x4 block)."""
    return max(net.img_resolution // 2 ** (count - 1), 8)


def use_fp16_blocks(net, count: int = FP16_RESOLUTIONS, clamp: float = FP16_CONV_CLAMP) -> None:
    """The original's mixed precision: the ``count`` highest resolutions of G.synthesis or D in
    fp16 (never the 4x4 block), every conv clamped (layers without a clamp get ``clamp``)."""
    low_precision_blocks(net, fp16_lowest_resolution(net, count))
    for module in net.modules():
        if getattr(module, "conv_clamp", 0) is None and module is not getattr(net, "b4", None):
            module.conv_clamp = clamp
    net.init_kwargs.update(num_fp16_res=max(net.init_kwargs.get("num_fp16_res") or 0, count),
                           conv_clamp=net.init_kwargs.get("conv_clamp") or clamp)


def bf16_lowest_resolution(net, device: torch.device) -> int:
    """Blocks from this resolution up run under bf16 autocast: the original's fp16 blocks on CUDA;
    on the CPU every block but the 4x4 one (which the original never runs in low precision either;
    oneDNN's bf16 convolutions are 1.3-2x faster than fp32's here at every size: docs/benchmarks.md)."""
    return fp16_lowest_resolution(net) if device.type == "cuda" else BF16_CPU_LOWEST


class Trainer:
    """G, D, G_ema with their optimisers, augmentation, the random streams and counters; ``group``:
    this process's place among several training the run (distributed.py)."""

    def __init__(self, cfg: TrainConfig, G, D, G_ema=None, *, device: torch.device, batch: int,
                 batch_gpu: int | None = None, log=None, group: distributed.Group = distributed.SINGLE):
        self.cfg, self.device, self.batch, self.group = cfg, device, batch, group
        self.group_sizes = group_sizes(batch)
        if len(self.group_sizes) < group.world:
            raise ValueError(f"batch {batch} on {group.world} processes: each process needs at least {GROUP} "
                             f"images of the batch, so use a batch of at least {GROUP * group.world}")
        self.groups = rank_groups(batch, group.rank, group.world)  # this process's groups and rows
        self.rows = rank_rows(batch, group.rank, group.world)
        self.batch_gpu = min(batch_gpu or len(self.rows), len(self.rows))  # images per pass on this process
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
        reduce = (lambda values: group.sum(values, device)) if group.world > 1 else None
        self.ada = AdaController(self.augment, ada_target=cfg.ada_target, ada_interval=cfg.ada_interval,
                                 ada_kimg=cfg.ada_kimg, reduce=reduce) if self.augment is not None else None
        self._generators: list[torch.Generator] = []  # reseeded for every pass: see _streams()
        epilogue = getattr(self.D, "b4", None)
        self.mbstd_groups = getattr(epilogue, "mbstd_group_size", 0) == GROUP and epilogue.mbstd_num_channels > 0
        if group.world > 1 and batch % GROUP:
            raise ValueError(f"on several processes the batch must be a multiple of {GROUP}, not {batch}")
        self._w_sum: list = [0.0, 0]  # this phase's sum of mapped w and their count (w_avg)
        self._pl_total: torch.Tensor | None = None
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
        distributed.broadcast_weights((self.G, self.D, self.G_ema), group)
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
        works on this machine (said in the log). G is not compiled: its noise comes from the random
        streams, which torch.compile cannot trace."""
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
        """reals: this process's rows of the batch (self.rows), [n, C, R, R] in [-1, 1] on the device.
        Statistics: read_stats()."""
        self._phase("Gmain", reals)
        if self.cfg.pl_weight > 0 and self.step % self.cfg.pl_interval == 0:
            self._phase("Greg", reals)
        self._phase("Dmain", reals)
        if self.r1_gamma > 0 and self.step % self.cfg.r1_interval == 0:
            self._phase("Dreg", reals)
        self._update_ema()
        self.step += 1
        self.run_nimg += self.batch
        if self.ada is not None:
            self.ada.update(self.batch)

    def _phase(self, name: str, reals: torch.Tensor, z: torch.Tensor | None = None) -> None:
        net, opt = (self.G, self.opt_G) if name[0] == "G" else (self.D, self.opt_D)
        loss, count = self.gradients(name, reals, z)
        for p in net.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        self._record(name, loss, count)
        for logits in self._ada_logits if self.ada is not None else ():
            self.ada.accumulate(logits)

    def gradients(self, name: str, reals: torch.Tensor, z: torch.Tensor | None = None,
                  pl_randn: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
        """The phase's gradients over the whole batch (summed over the processes) in .grad of its
        network (from zero), this process's rows in passes of batch_gpu; moves w_avg (and pl_mean).
        Returns this process's loss (mean over its samples, gain included, detached) and how many
        samples it is over. ``z`` and ``pl_randn`` (one pass only) replace the streams' draws.

        Out of GPU memory in a pass (automatic batch_gpu only): the phase runs again in passes half
        the size. Nothing it changes outside .grad moves before all its passes are done, and the
        streams start again from their seeds, so no update is applied twice and none differs."""
        net = self.G if name[0] == "G" else self.D
        gain = {"Greg": self.cfg.pl_interval, "Dreg": self.cfg.r1_interval}.get(name, 1)
        params = self._trainable(net)
        for p in params:
            p.requires_grad_(True)
        self._pl_total = None  # Greg's sum of path lengths over the processes, once per phase
        while True:
            for p in params:
                p.grad = None
            self._ada_logits.clear()
            self._w_sum = [0.0, 0]
            try:
                if name == "Greg":
                    values = self._path_length_passes(z, pl_randn, gain)
                else:
                    values = [self.accumulate(name, reals[rows], None if z is None else z[rows],
                                              gain=gain * n / self.batch, streams=self._streams(name, groups))
                              for rows, n, groups in self._passes()]
                break
            except torch.cuda.OutOfMemoryError:
                per_pass = self.batch_gpu // GROUP // 2 * GROUP
                if self.cfg.batch_gpu or per_pass < GROUP:
                    raise
                self._fewer_images_per_pass(per_pass)
        net.requires_grad_(False)
        distributed.reduce_gradients(params, self.group)
        if name != "Dreg":
            self._move_w_avg()
        values = torch.cat(values)
        return values.mean() * gain, len(values)

    def _passes(self) -> list[tuple[slice, int, list[int]]]:
        """(local rows, image count, groups) of each pass: whole groups, batch_gpu images at most."""
        per_pass = max(self.batch_gpu // GROUP, 1)
        groups = list(self.groups)
        out = []
        for i in range(0, len(groups), per_pass):
            part = groups[i:i + per_pass]
            start = part[0] * GROUP - self.rows.start
            n = sum(self.group_sizes[g] for g in part)
            out.append((slice(start, start + n), n, part))
        return out

    def _streams(self, phase: str, groups: list[int]) -> Streams:
        """The random streams of ``groups`` in ``phase`` of this step, from their seeds. The
        generators are reused: one pass's streams at a time."""
        while len(self._generators) < len(groups):
            self._generators.append(torch.Generator(self.device))
        index = PHASES.index(phase)
        gens = [gen.manual_seed(stream_seed(self.cfg.seed, self.step, index, g))
                for gen, g in zip(self._generators, groups)]
        return Streams(gens, [self.group_sizes[g] for g in groups])

    def _fewer_images_per_pass(self, per_pass: int) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.batch_gpu = per_pass
        self.log(f"out of GPU memory: {per_pass} images per pass, {-(-len(self.rows) // per_pass)} passes per step")

    def accumulate(self, phase: str, real: torch.Tensor, z: torch.Tensor | None, *, gain: float = 1.0,
                   streams: Streams) -> torch.Tensor:
        """Backpropagate one pass of ``phase`` (Gmain, Dmain or Dreg) into .grad (the original's
        accumulate_gradients): mean(loss) * gain. Returns the per-sample loss terms (detached):
        Gmain/Dmain the logistic losses, Dreg r1_gamma / 2 * |grad|^2. z: drawn from ``streams``
        when None."""
        if phase in ("Gmain", "Dmain") and z is None:
            z = streams.randn((len(streams), self.G.z_dim), device=self.device)
        if phase == "Gmain":
            img, _ = self._run_G(z, streams)
            loss = losses.g_nonsaturating(self._run_D(img, streams))
            loss.mean().mul(gain).backward()
        elif phase == "Dmain":
            with torch.no_grad():
                fake, _ = self._run_G(z, streams)
            loss_fake = losses.d_fake(self._run_D(fake, streams))
            loss_fake.mean().mul(gain).backward()
            real_logits = self._run_D(real, streams)
            self._ada_logits.append(real_logits.detach())
            loss_real = losses.d_real(real_logits)
            loss_real.mean().mul(gain).backward()
            loss = loss_fake + loss_real
        elif phase == "Dreg":
            real = real.detach().requires_grad_(True)
            real_logits = self._run_D(real, streams, second_order=True)
            self._ada_logits.append(real_logits.detach())
            loss = losses.r1_penalty(real_logits, real) * (self.r1_gamma / 2)
            (real_logits.flatten() * 0 + loss).mean().mul(gain).backward()
        else:
            raise ValueError(f"unknown phase {phase!r}: one of Gmain, Dmain, Dreg (Greg: gradients())")
        return loss.detach()

    def _path_length_passes(self, z: torch.Tensor | None, pl_randn: torch.Tensor | None, gain: float) -> list:
        """Greg: path length on the first half of every group (the original: half of each pass),
        with pl_mean moved by the mean length over the whole batch and kept in the graph
        (losses.path_length_terms). That mean must be known before any backward: with one pass
        the lengths stay in the graph while the processes sum them; with several, a first round
        measures them and each pass is run again from its streams for the gradients. The sum over
        the processes is kept for a retry after running out of memory (the others have gone on)."""
        passes = self._passes()
        kept = len(passes) == 1 and self._pl_total is None

        def forward(rows: slice, streams: Streams, create_graph: bool, count_w: bool):
            full = z[rows] if z is not None else streams.randn((len(streams), self.G.z_dim), device=self.device)
            halves = [max(n // 2, 1) for n in streams.sizes]
            starts = np.cumsum([0] + streams.sizes[:-1])
            zh = torch.cat([full[s:s + h] for s, h in zip(starts, halves)])
            streams = streams.shrink(halves)
            img, ws = self._run_G(zh, streams, count_w=count_w)
            randn = pl_randn if pl_randn is not None else streams.randn(img.shape, device=self.device)
            return img, losses.path_lengths(img, ws, randn, create_graph=create_graph)

        first = []
        if self._pl_total is None:
            for rows, _, groups in passes:
                img, lengths = forward(rows, self._streams("Greg", groups), create_graph=kept, count_w=kept)
                first.append((img, lengths) if kept else (None, lengths.detach()))
            self._pl_total = self.group.sum([sum(lengths.detach().sum() for _, lengths in first),
                                             sum(len(lengths) for _, lengths in first)], self.device)
        total = self._pl_total
        mean_length = total[0] / total[1]
        new_mean = self.pl_mean.lerp(mean_length, losses.PL_DECAY)
        values = []
        for rows, _, groups in passes:
            if kept:
                img, lengths = first[0]
            else:  # the same streams again, now for the gradients
                img, lengths = forward(rows, self._streams("Greg", groups), create_graph=True, count_w=True)
            penalty, objective = losses.path_length_terms(lengths, new_mean, mean_length, losses.PL_DECAY)
            weight = gain * self.cfg.pl_weight * len(lengths) / total[1]
            (img[:, 0, 0, 0] * 0 + objective).mean().mul(weight).backward()  # as the original: every
            # parameter gets a gradient (zero where it has no effect), so Adam treats them all alike
            values.append(penalty * self.cfg.pl_weight)
        self.pl_mean = new_mean.detach()
        return values

    def _run_G(self, z: torch.Tensor, streams: Streams, count_w: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Images [N, C, R, R] (float32) and the ws they came from, with style mixing decided per group."""
        G, dev = self.G, self.device
        ws = G.mapping(z, None)  # [N, num_ws, w_dim]; the mapping runs in fp32; w_avg: _move_w_avg()
        if count_w:
            self._w_sum = [self._w_sum[0] + ws[:, 0].detach().float().sum(dim=0), self._w_sum[1] + len(ws)]
        if self.cfg.style_mixing > 0:  # on the device, no sync: cutoff = num_ws means no mixing
            num_ws = ws.shape[1]
            cutoff = streams.per_group(lambda g: torch.randint(1, num_ws, [], device=dev, generator=g))
            mixing = streams.per_group(lambda g: torch.rand([], device=dev, generator=g)) < self.cfg.style_mixing
            cutoff = torch.where(mixing, cutoff, num_ws)
            ws2 = G.mapping(streams.randn(z.shape, device=dev), None)
            later = torch.arange(num_ws, device=dev)[None, :, None] >= cutoff[:, None, None]
            ws = torch.where(later, ws2, ws)
        img = G.synthesize(ws, noise_mode=self.noise_mode, fused=False, force_fp32=self.force_fp32,
                           channels_last=self.channels_last, noise_generator=streams, bf16=self.bf16)
        return img.float(), ws

    def _move_w_avg(self) -> None:
        """w_avg toward the mean w of this phase's batch (all processes), as the mapping's update."""
        mapping = self.G.mapping
        total = self.group.sum(self._w_sum, self.device)
        mean = total[:-1] / total[-1]
        mapping.w_avg.copy_(mean.to(mapping.w_avg.dtype).lerp(mapping.w_avg, mapping.w_avg_beta))

    def _run_D(self, img: torch.Tensor, streams: Streams, second_order: bool = False) -> torch.Tensor:
        if self.cfg.aug == "ada" and (self.ada.p if self.ada is not None else float(self.augment.p)) > 0:
            img = self.augment(img, streams)  # p is read on the host; the warp waits for the device, as the original's
        elif self.cfg.aug == "diffaugment":
            img = diffaugment(img, self.cfg.diffaugment_policy, streams)
        # D's minibatch standard deviation groups samples i, i + N/4, i + 2N/4, ... of its input:
        # laid out so, its groups are the streams' groups, whatever the pass or process
        k = len(img) // GROUP
        regroup = self.mbstd_groups and k > 1 and len(img) % GROUP == 0
        if regroup:
            img = img[torch.arange(len(img), device=img.device).reshape(k, GROUP).T.flatten()]  # keeps NHWC
        if self.compiled_D is not None and not second_order:
            logits = self.compiled_D(img)
        else:
            logits = self.D(img, None, force_fp32=self.force_fp32, channels_last=self.channels_last, bf16=self.bf16)
        if regroup:
            logits = logits.reshape(GROUP, k, -1).transpose(0, 1).reshape(len(img), -1)
        return logits.float()

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

    def _record(self, phase: str, loss: torch.Tensor, count: int) -> None:
        """Keep this process's [sum, count] of the phase's loss for read_stats()."""
        value = loss
        if phase == "Dreg":
            value = loss / (self.cfg.r1_interval * self.r1_gamma / 2)  # the R1 penalty itself, as logged before
        elif phase == "Greg":
            value = loss / (self.cfg.pl_interval * self.cfg.pl_weight)  # the path length penalty
        pair = torch.stack([value.detach() * count, torch.tensor(float(count), device=value.device)])
        self._stats.setdefault(self.STAT_NAMES[phase], []).append(pair)

    def read_stats(self, reset: bool = True) -> dict:
        """Means of each statistic since the last reset over the whole batch of every step (one
        device sync; on several processes, one all-reduce that each of them must call), and ADA's p."""
        names = list(self._stats)
        means = []
        if names:
            pairs = torch.cat([torch.stack(self._stats[n]) for n in names])  # [steps of all names, 2]
            pairs = self.group.sum([pairs], self.device).reshape(-1, 2)
            per_step = (pairs[:, 0] / pairs[:, 1]).split([len(self._stats[n]) for n in names])
            means = torch.stack([values.mean() for values in per_step]).tolist()
        if reset:
            self._stats = {}
        out = dict(zip(names, means))
        if self.ada is not None:
            out["ada_p"] = self.ada.p
        return out

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
        return {"step": self.step, "run_nimg": self.run_nimg, "batch": self.batch,
                "ada": self.ada.state_dict() if self.ada is not None else None}

    def load_state(self, tensors: dict[str, torch.Tensor], counters: dict) -> None:
        self.step, self.run_nimg = int(counters["step"]), int(counters["run_nimg"])
        if self.ada is not None and counters.get("ada"):
            self.ada.load_state_dict(counters["ada"])
        self.pl_mean = tensors["train.pl_mean"].to(self.device).reshape([])  # (train.rng of older states: unused)
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
                "precision": self.precision, "compiled": self.compiled_D is not None, "processes": self.group.world}
