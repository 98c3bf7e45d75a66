"""Writers of checkpoint files in the foreign layouts Atelier reads, from our own networks.

They produce the same pickle structure as the originals (official persistent objects reducing to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, TF-era ``Network`` tuples,
rosinality state dicts) without any NVIDIA or rosinality code: the foreign globals are stand-ins
registered in ``sys.modules`` only while a file is being written.
"""
from __future__ import annotations

import contextlib
import pickle
import sys
import types

import numpy as np
import torch

STANDARD_FILTER = torch.tensor([1.0, 3.0, 3.0, 1.0])[:, None] * torch.tensor([1.0, 3.0, 3.0, 1.0])[None, :] / 64


def fill_deterministic(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Set every tensor from one seeded generator, in sorted-name order (independent of init)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in sorted(net.state_dict().items()):
            if name.endswith("resample_filter"):
                continue
            r = torch.randn(t.shape, generator=gen)
            if name.endswith("noise_strength"):
                t.copy_(r.abs() * 0.2 + 0.05)
            elif name.endswith("w_avg"):
                t.copy_(r * 0.3)
            elif name.endswith("affine.bias"):
                t.copy_(1 + r * 0.1)
            elif name.endswith(".bias"):
                t.copy_(r * 0.1)
            else:
                t.copy_(r)
    return net


# ---------------------------------------------------------------------------- fake foreign globals

class _EasyDict(dict):
    pass


class _Network:
    """Pickles like a TF-era ``dnnlib.tflib.network.Network`` (state = a dict)."""

    def __init__(self, state: dict):
        self._state = state

    def __getstate__(self):
        return self._state


def _reconstruct_persistent_obj(meta):  # never called: only referenced by name in the stream
    raise AssertionError("the test stand-in must not run")


@contextlib.contextmanager
def _fake_modules():
    names = {
        "torch_utils": {}, "torch_utils.persistence": {"_reconstruct_persistent_obj": _reconstruct_persistent_obj},
        "dnnlib": {"EasyDict": _EasyDict}, "dnnlib.util": {"EasyDict": _EasyDict},
        "dnnlib.tflib": {}, "dnnlib.tflib.network": {"Network": _Network},
    }
    saved = {n: sys.modules.get(n) for n in names}
    try:
        for n, attrs in names.items():
            mod = types.ModuleType(n)
            for a, obj in attrs.items():
                setattr(mod, a, obj)
            sys.modules[n] = mod
        _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
        _EasyDict.__module__, _EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
        _Network.__module__, _Network.__qualname__ = "dnnlib.tflib.network", "Network"
        yield
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old


# ---------------------------------------------------------------------------- official pickles

class _OfficialPickler(pickle.Pickler):
    def __init__(self, f, attrs: dict, init_kwargs: dict):
        super().__init__(f, protocol=4)
        self.attrs, self.init_kwargs, self.prefix = attrs, init_kwargs, {}

    def reducer_override(self, obj):
        if not isinstance(obj, torch.nn.Module):
            return NotImplemented
        prefix = self.prefix.get(id(obj), "")
        for name, child in obj._modules.items():
            if child is not None:
                self.prefix[id(child)] = f"{prefix}{name}."
        state = {
            "training": obj.training,
            "_parameters": {k: v for k, v in obj._parameters.items()},
            "_buffers": {k: v for k, v in obj._buffers.items()},
            "_non_persistent_buffers_set": set(obj._non_persistent_buffers_set),
            "_forward_hooks": __import__("collections").OrderedDict(),
            "_modules": dict(obj._modules),
            "_init_args": (),
            "_init_kwargs": self.init_kwargs.get(prefix, {}),
            **self.attrs.get(prefix.rstrip("."), {}),
        }
        meta = dict(type="class", version=4, module_src="# (module source would be here)\n",
                    class_name=type(obj).__name__, state=state)
        return _reconstruct_persistent_obj, (meta,)


def _official_kwargs(G: torch.nn.Module, flavour: str) -> dict:
    kw = dict(G.init_kwargs)
    top = {k: kw.pop(k) for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
    mapping = _EasyDict(num_layers=kw.pop("mapping_layers"))
    if flavour == "ada":
        return _EasyDict(top, mapping_kwargs=mapping, synthesis_kwargs=_EasyDict(kw))
    return _EasyDict(top, mapping_kwargs=mapping, **kw)


def write_official_pickle(path, *, G_ema, G=None, D=None, flavour: str = "ada", attrs: dict | None = None,
                          extra: dict | None = None) -> None:
    """A stylegan2-ada-pytorch (``flavour='ada'``) or stylegan3-repo (``'sg3'``) network pickle."""
    clamp = G_ema.init_kwargs.get("conv_clamp")
    attrs = {"synthesis.b4.conv1": {"conv_clamp": clamp}, "b4.conv": {"conv_clamp": clamp},
             "b4.mbstd": {"group_size": 4, "num_channels": 1}, **(attrs or {})}
    snap = dict(G=G, D=D, G_ema=G_ema, augment_pipe=None,
                training_set_kwargs=_EasyDict(resolution=G_ema.img_resolution, use_labels=False), **(extra or {}))
    with _fake_modules(), open(path, "wb") as f:
        _OfficialPickler(f, attrs, {"": _official_kwargs(G_ema, flavour)}).dump(snap)


# ---------------------------------------------------------------------------- TF-era pickles

def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float32)


def _tf_mod(sd, src, dst, out, flip=False):
    w = _np(sd[f"{src}.weight"]).transpose(2, 3, 1, 0)
    out[f"{dst}/weight"] = np.ascontiguousarray(w[::-1, ::-1] if flip else w)
    out[f"{dst}/bias"] = _np(sd[f"{src}.bias"])
    out[f"{dst}/mod_weight"] = np.ascontiguousarray(_np(sd[f"{src}.affine.weight"]).T)
    out[f"{dst}/mod_bias"] = _np(sd[f"{src}.affine.bias"]) - 1
    if f"{src}.noise_strength" in sd:
        out[f"{dst}/noise_strength"] = _np(sd[f"{src}.noise_strength"])


def _tf_g_vars(G) -> tuple[dict, dict, dict]:
    sd, R = G.state_dict(), G.img_resolution
    mapping, synth = {}, {}
    for i in range(G.init_kwargs["mapping_layers"]):
        mapping[f"Dense{i}/weight"] = np.ascontiguousarray(_np(sd[f"mapping.fc{i}.weight"]).T)
        mapping[f"Dense{i}/bias"] = _np(sd[f"mapping.fc{i}.bias"])
    synth["4x4/Const/const"] = _np(sd["synthesis.b4.const"])[None]
    r, n = 4, 0
    while r <= R:
        p, b = f"{r}x{r}", f"synthesis.b{r}"
        if r == 4:
            _tf_mod(sd, f"{b}.conv1", f"{p}/Conv", synth)
        else:
            _tf_mod(sd, f"{b}.conv0", f"{p}/Conv0_up", synth, flip=True)
            _tf_mod(sd, f"{b}.conv1", f"{p}/Conv1", synth)
        for layer in (["conv1"] if r == 4 else ["conv0", "conv1"]):
            synth[f"noise{n}"] = _np(sd[f"{b}.{layer}.noise_const"])[None, None]
            n += 1
        if f"{b}.torgb.weight" in sd:
            _tf_mod(sd, f"{b}.torgb", f"{p}/ToRGB", synth)
        r *= 2
    return {"dlatent_avg": _np(sd["mapping.w_avg"])}, mapping, synth


def _tf_d_vars(D) -> dict:
    sd, v = D.state_dict(), {}
    conv = lambda t: np.ascontiguousarray(_np(t).transpose(2, 3, 1, 0))  # noqa: E731
    dense = lambda t: np.ascontiguousarray(_np(t).T)  # noqa: E731
    r = D.img_resolution
    while r > 4:
        p, b = f"{r}x{r}", f"b{r}"
        if f"{b}.fromrgb.weight" in sd:
            v[f"{p}/FromRGB/weight"], v[f"{p}/FromRGB/bias"] = conv(sd[f"{b}.fromrgb.weight"]), _np(sd[f"{b}.fromrgb.bias"])
        v[f"{p}/Conv0/weight"], v[f"{p}/Conv0/bias"] = conv(sd[f"{b}.conv0.weight"]), _np(sd[f"{b}.conv0.bias"])
        v[f"{p}/Conv1_down/weight"], v[f"{p}/Conv1_down/bias"] = conv(sd[f"{b}.conv1.weight"]), _np(sd[f"{b}.conv1.bias"])
        if f"{b}.skip.weight" in sd:
            v[f"{p}/Skip/weight"] = conv(sd[f"{b}.skip.weight"])
        r //= 2
    v["4x4/Conv/weight"], v["4x4/Conv/bias"] = conv(sd["b4.conv.weight"]), _np(sd["b4.conv.bias"])
    v["4x4/Dense0/weight"], v["4x4/Dense0/bias"] = dense(sd["b4.fc.weight"]), _np(sd["b4.fc.bias"])
    v["Output/weight"], v["Output/bias"] = dense(sd["b4.out.weight"]), _np(sd["b4.out.bias"])
    return v


def _tf_net(name, variables: dict, components=None, static_kwargs=None, version=4) -> _Network:
    return _Network(dict(version=version, name=name, static_kwargs=static_kwargs or {},
                         components=components or {}, build_module_src="# (TF source would be here)\n",
                         build_func_name=f"{name}_build", variables=list(variables.items())))


def write_tf_pickle(path, *, G, D, G_ema, version: int = 4, raw_vars: dict | None = None) -> None:
    """A TF-era ``(G, D, Gs)`` pickle. ``raw_vars`` replaces Gs's synthesis variables (refusal tests)."""
    nets = []
    for name, net in (("G", G), ("D", D), ("Gs", G_ema)):
        if name == "D":
            nets.append(_tf_net("D", _tf_d_vars(net), static_kwargs=dict(resolution=net.img_resolution,
                                                                            mbstd_group_size=4), version=version))
            continue
        top, mapping, synth = _tf_g_vars(net)
        if raw_vars is not None and name == "Gs":
            synth = raw_vars
        comps = {"mapping": _tf_net("G_mapping", mapping, version=version),
                 "synthesis": _tf_net("G_synthesis", synth, version=version)}
        nets.append(_tf_net(name, top, comps, dict(resolution=net.img_resolution), version=version))
    with _fake_modules(), open(path, "wb") as f:
        pickle.dump(tuple(nets), f, protocol=3)


# ---------------------------------------------------------------------------- rosinality .pt

def rosinality_g(G) -> dict:
    sd, out = G.state_dict(), {}
    for i in range(G.init_kwargs["mapping_layers"]):
        out[f"style.{i + 1}.weight"], out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]

    def styled(src, dst, up):
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        if up:
            out[f"{dst}.conv.blur.kernel"] = STANDARD_FILTER * 4
        if src.endswith("torgb"):
            out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)
            if up:
                del out[f"{dst}.conv.blur.kernel"]
                out[f"{dst}.upsample.kernel"] = STANDARD_FILTER * 4
        else:
            out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
            out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]

    styled("synthesis.b4.conv1", "conv1", False)
    styled("synthesis.b4.torgb", "to_rgb1", False)
    out["noises.noise_0"] = sd["synthesis.b4.conv1.noise_const"][None, None]
    r, k = 8, 0
    while r <= G.img_resolution:
        styled(f"synthesis.b{r}.conv0", f"convs.{2 * k}", True)
        styled(f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}", False)
        styled(f"synthesis.b{r}.torgb", f"to_rgbs.{k}", True)
        out[f"noises.noise_{2 * k + 1}"] = sd[f"synthesis.b{r}.conv0.noise_const"][None, None]
        out[f"noises.noise_{2 * k + 2}"] = sd[f"synthesis.b{r}.conv1.noise_const"][None, None]
        r, k = r * 2, k + 1
    return {k: v.clone() for k, v in out.items()}


def rosinality_d(D) -> dict:
    sd, out, R = D.state_dict(), {}, D.img_resolution
    out["convs.0.0.weight"], out["convs.0.1.bias"] = sd[f"b{R}.fromrgb.weight"], sd[f"b{R}.fromrgb.bias"]
    j, r = 1, R
    while r > 4:
        b, s = f"b{r}", f"convs.{j}"
        out[f"{s}.conv1.0.weight"], out[f"{s}.conv1.1.bias"] = sd[f"{b}.conv0.weight"], sd[f"{b}.conv0.bias"]
        out[f"{s}.conv2.0.kernel"] = STANDARD_FILTER.clone()
        out[f"{s}.conv2.1.weight"], out[f"{s}.conv2.2.bias"] = sd[f"{b}.conv1.weight"], sd[f"{b}.conv1.bias"]
        out[f"{s}.skip.0.kernel"], out[f"{s}.skip.1.weight"] = STANDARD_FILTER.clone(), sd[f"{b}.skip.weight"]
        j, r = j + 1, r // 2
    out["final_conv.0.weight"], out["final_conv.1.bias"] = sd["b4.conv.weight"], sd["b4.conv.bias"]
    out["final_linear.0.weight"], out["final_linear.0.bias"] = sd["b4.fc.weight"], sd["b4.fc.bias"]
    out["final_linear.1.weight"], out["final_linear.1.bias"] = sd["b4.out.weight"], sd["b4.out.bias"]
    return {k: v.clone() for k, v in out.items()}


def write_rosinality_pt(path, *, G_ema, G=None, D=None, with_latent_avg: bool = True) -> None:
    ckpt = {"g_ema": rosinality_g(G_ema)}
    if G is not None:
        ckpt["g"] = rosinality_g(G)
    if D is not None:
        ckpt["d"] = rosinality_d(D)
    if with_latent_avg:
        ckpt["latent_avg"] = G_ema.mapping.w_avg.detach().clone()
    torch.save(ckpt, path)


# ---------------------------------------------------------------------------- hostile files

class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


def write_malicious_pickle(path, marker, *, nested: bool = False) -> None:
    """A pickle that would run ``touch marker`` if loaded with plain ``pickle.load``."""
    payload = _RunsCommand(f"touch {marker}")
    obj = {"G_ema": None, "training_set_kwargs": {"x": payload}} if nested else payload
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
