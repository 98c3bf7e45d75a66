"""The training step: lazy regularisation as separate Adam steps, the run's own randomness, and an
out-of-memory retry that never applies an update twice."""
import threading

import numpy as np
import pytest
import torch

from core.stylegan import load_checkpoint
from core.stylegan.augment import AdaptiveAugment, diffaugment
from core.stylegan.train import train
from core.stylegan.train_config import TrainConfig
from core.stylegan.trainer import Trainer
from tests.test_train import ArrayDataset
from tests.tiny import tiny_networks, write_tiny_checkpoint

CPU = torch.device("cpu")


def _trainer(**kw) -> Trainer:
    G, D = tiny_networks()
    cfg = TrainConfig(batch=kw.pop("batch", 4), device="cpu", **kw)
    return Trainer(cfg, G, D, device=CPU, batch=cfg.batch, batch_gpu=kw.get("batch_gpu") or None)


def _reals(n=4, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _adam_steps(opt) -> set[int]:
    return {int(s["step"]) for s in opt.state.values()}


def test_regularisers_are_separate_adam_steps_at_their_intervals():
    tr = _trainer(aug="none", r1_gamma=1.0, r1_interval=2, pl_weight=2.0, pl_interval=3)
    counts = []
    for _ in range(4):
        tr.train_step(_reals())
        counts.append((_adam_steps(tr.opt_G), _adam_steps(tr.opt_D)))
    # step 0: Gmain + Greg, Dmain + Dreg; step 1: main phases only; step 2: Dreg again; step 3: Greg again
    assert counts == [({2}, {2}), ({3}, {3}), ({4}, {5}), ({6}, {6})]
    assert tr.opt_G.param_groups[0]["lr"] == pytest.approx(0.0025 * 3 / 4)
    assert tr.opt_D.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (2 / 3)))


def test_g_is_scaled_by_its_interval_with_path_length_off():
    tr = _trainer(aug="none")
    assert tr.opt_G.param_groups[0]["lr"] == pytest.approx(0.002)
    assert tr.opt_G.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** 0.8))
    assert tr.opt_D.param_groups[0]["lr"] == pytest.approx(0.0025 * 16 / 17)


def test_w_avg_moves_once_in_every_phase_that_runs_g():
    tr = _trainer(aug="none", style_mixing=0.0, r1_gamma=1.0)
    after, phase = {}, tr._phase

    def spy(name, reals, z=None):
        phase(name, reals, z)
        after[name] = tr.G.mapping.w_avg.clone()
    tr._phase = spy
    before = tr.G.mapping.w_avg.clone()
    tr.train_step(_reals())
    assert list(after) == ["Gmain", "Dmain", "Dreg"]
    assert not torch.equal(after["Gmain"], before) and not torch.equal(after["Dmain"], after["Gmain"])
    assert torch.equal(after["Dreg"], after["Dmain"])  # Dreg runs no G


def test_augmentation_draws_from_the_given_generator():
    x = _reals(8)
    aug = AdaptiveAugment(p=0.8)
    outs = []
    for _ in range(2):
        torch.manual_seed(len(outs))  # the global stream differs each time
        outs.append((aug(x, torch.Generator().manual_seed(3)),
                     diffaugment(x, generator=torch.Generator().manual_seed(3))))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    assert not torch.equal(outs[0][0], x)


def _state(path):
    ck = load_checkpoint(path)
    return {**{f"G.{k}": v for k, v in ck.G.state_dict().items()},
            **{f"D.{k}": v for k, v in ck.D.state_dict().items()},
            **{f"G_ema.{k}": v for k, v in ck.G_ema.state_dict().items()}, **ck.extra_tensors}


def test_another_thread_drawing_random_numbers_changes_nothing(tmp_path):
    """A run straight to step 4 equals one stopped at 2 and resumed, while another thread draws
    from (and reseeds) the process-wide generator all along: bit for bit."""
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.safetensors")
    ds = ArrayDataset()
    cfg = TrainConfig(batch=4, snapshot_every=2, device="cpu", grid_seeds=(0,), aug="diffaugment", r1_interval=2)
    train(cfg.replace(steps=4), tmp_path / "a", dataset=ds, checkpoint=load_checkpoint(ckpt), log=lambda m: None)
    stop = threading.Event()

    def draw():
        i = 0
        while not stop.wait(0.0005):
            torch.randn(256)
            torch.manual_seed(i)
            i += 1
    noisy = threading.Thread(target=draw, daemon=True)
    noisy.start()
    try:
        train(cfg.replace(steps=2), tmp_path / "b", dataset=ds, checkpoint=load_checkpoint(ckpt), log=lambda m: None)
        train(cfg.replace(steps=4), tmp_path / "b", dataset=ds, checkpoint=None, log=lambda m: None)
    finally:
        stop.set()
        noisy.join()
    a, b = _state(tmp_path / "a" / "state.safetensors"), _state(tmp_path / "b" / "state.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_out_of_memory_mid_step_retries_the_phase_and_applies_each_update_once(monkeypatch):
    """Out of memory in Dmain's first D pass (after G was updated and Dmain's G pass ran): the
    phase runs again in passes of half the size. The result equals a twin that ran Dmain in those
    passes from the start, and one that never ran out of memory (the streams belong to the samples,
    not to the passes): G updated once, D once, w_avg moved once."""
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    oom = _trainer(batch=8, aug="diffaugment", r1_gamma=0.0, precision="fp32")
    twin = _trainer(batch=8, aug="diffaugment", r1_gamma=0.0, precision="fp32")
    whole = _trainer(batch=8, aug="diffaugment", r1_gamma=0.0, precision="fp32")
    calls = []
    run_D = oom._run_D

    def failing_run_D(img, streams):
        calls.append(1)
        if len(calls) == 2:  # Gmain's D pass is the first; Dmain's fake pass the second
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (forced by the test)")
        return run_D(img, streams)
    oom._run_D = failing_run_D
    twin_phase = twin._phase

    def halve_for_d(name, reals, z=None):
        if name == "Dmain":
            twin.batch_gpu = 4
        twin_phase(name, reals, z)
    twin._phase = halve_for_d
    for tr in (oom, twin, whole):
        tr.train_step(_reals(8))
    assert oom.batch_gpu == 4
    assert _adam_steps(oom.opt_G) == {1} and _adam_steps(oom.opt_D) == {1}
    for net in ("G", "D", "G_ema"):
        for (name, x), y, w in zip(getattr(oom, net).state_dict().items(), getattr(twin, net).state_dict().values(),
                                   getattr(whole, net).state_dict().values()):
            assert torch.equal(x, y), f"{net}.{name}"
            assert torch.allclose(x, w, rtol=1e-4, atol=1e-6), f"{net}.{name}"  # float rounding of the sums


def test_out_of_memory_with_a_fixed_pass_size_is_raised():
    tr = _trainer(batch=8, batch_gpu=8, aug="none")

    def no_memory(img, streams):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (forced by the test)")
    tr._run_D = no_memory
    with pytest.raises(torch.cuda.OutOfMemoryError):
        tr.train_step(_reals(8))
    assert _adam_steps(tr.opt_G) == set()  # nothing was applied


def test_statistics_stay_on_the_device_until_read():
    tr = _trainer(aug="none", r1_gamma=1.0)
    for _ in range(3):
        tr.train_step(_reals())
    assert all(isinstance(v, torch.Tensor) for values in tr._stats.values() for v in values)
    stats = tr.read_stats()
    assert set(stats) == {"loss_G", "loss_D", "r1"} and all(np.isfinite(v) for v in stats.values())
    assert tr.read_stats() == {}


def test_precision_auto_is_chosen_per_device_and_fp16_needs_cuda(tmp_path):
    from core.stylegan.train import TrainingError
    from core.stylegan.trainer import cpu_auto_precision, resolve_precision
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    assert resolve_precision("auto", CPU) == cpu_auto_precision()
    assert resolve_precision("auto", torch.device("mps")) == "fp32"
    lines = []
    with pytest.raises(TrainingError, match="fp16 runs on CUDA only"):
        train(TrainConfig(steps=1, batch=4, device="cpu", precision="fp16"), tmp_path / "run", dataset=ArrayDataset(),
              checkpoint=load_checkpoint(write_tiny_checkpoint(tmp_path / "t.safetensors")), log=lines.append)
    train(TrainConfig(steps=1, batch=4, device="cpu", grid_seeds=(0,)), tmp_path / "auto", dataset=ArrayDataset(),
          checkpoint=load_checkpoint(tmp_path / "t.safetensors"), log=lines.append)
    assert f"device cpu, precision {cpu_auto_precision()} (auto on cpu), batch 4" in lines


def test_auto_device_prefers_cuda_then_mps(monkeypatch):
    from core.stylegan.trainer import resolve_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS"):
        resolve_device("mps")


def test_bf16_on_the_cpu_trains_with_fp32_master_weights():
    tr = _trainer(aug="none", precision="bf16", r1_gamma=1.0, pl_weight=2.0)
    tr.train_step(_reals())
    stats = tr.read_stats()
    assert set(stats) == {"loss_G", "pl", "loss_D", "r1"} and all(np.isfinite(v) for v in stats.values())
    assert all(p.dtype == torch.float32 for p in list(tr.G.parameters()) + list(tr.D.parameters()))
    bf16_blocks = [r for r in tr.G.synthesis.block_resolutions if tr.G.synthesis.get_submodule(f"b{r}").use_fp16]
    assert bf16_blocks == [8, 16, 32] and not tr.G_ema.synthesis.b32.use_fp16  # on the CPU: all but 4x4
    assert all(s["exp_avg"].dtype == torch.float32 for s in tr.opt_G.state.values())


def test_fp16_blocks_as_the_original():
    from core.stylegan.trainer import use_fp16_blocks
    G, D = tiny_networks()  # 32 px: blocks 4..32 in G, 32..8 in D
    G.synthesis.b32.conv1.conv_clamp = None
    use_fp16_blocks(G)
    use_fp16_blocks(D)
    assert [G.synthesis.get_submodule(f"b{r}").use_fp16 for r in (4, 8, 16, 32)] == [False, True, True, True]
    assert all(D.get_submodule(f"b{r}").use_fp16 for r in (8, 16, 32))
    assert G.synthesis.b32.conv1.conv_clamp == 256 and D.b32.conv0.conv_clamp == 256
    assert G.init_kwargs["num_fp16_res"] == 4 and G.init_kwargs["conv_clamp"] == 256


def test_no_float64_anywhere_in_a_step():
    """MPS has no float64: every op of a step (forward and backward, ADA and both regularisers)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    seen = set()

    class Dtypes(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    seen.add(t.dtype)
            return out
    tr = _trainer(r1_gamma=1.0, pl_weight=2.0)
    tr.augment.p.fill_(0.5)
    with Dtypes():
        tr.train_step(_reals())
    assert torch.float32 in seen and torch.float64 not in seen, seen


def test_compile_falls_back_cleanly_without_a_compiler(monkeypatch):
    def no_compiler(*a, **kw):
        raise RuntimeError("no working C++ compiler found")
    monkeypatch.setattr(torch, "compile", no_compiler)
    lines = []
    G, D = tiny_networks()
    tr = Trainer(TrainConfig(batch=4, device="cpu", compile=True, aug="none"), G, D, device=CPU, batch=4,
                 log=lines.append)
    assert tr.compiled_D is None and lines and "no working C++ compiler found" in lines[0]
    tr.train_step(_reals())
    assert tr.lr_info()["compiled"] is False


def test_cpu_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    from core.stylegan.trainer import cpu_auto_precision
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert cpu_auto_precision() == "fp32"   # emulated bf16 is slower than fp32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert cpu_auto_precision() == "bf16"
