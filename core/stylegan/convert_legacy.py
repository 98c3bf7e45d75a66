"""Converters to official names for TF-era StyleGAN2 pickles and rosinality ``.pt`` files.

Each returns ``(G, D, G_ema, source_format, g_hints, d_hints, metadata)`` like the official
reader in ``formats``. Every source tensor must be used and every official tensor produced;
a name left over means a layout this code does not know, which is refused rather than guessed.
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch

from .infer import add_resample_filters, standard_filter
from .safe_pickle import CheckpointError, TFNetworkStub


def _t(x) -> torch.Tensor:
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise CheckpointError("a TF variable that is not a float array")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


# ---------------------------------------------------------------------------- TF-era pickles

def _tf_vars(net: TFNetworkStub, prefix: str = "", out: dict | None = None) -> dict:
    out = {} if out is None else out
    for name, value in net.state.get("variables") or []:
        out[prefix + name] = value
    for name, comp in (net.state.get("components") or {}).items():
        if not isinstance(comp, TFNetworkStub):
            raise CheckpointError("a TF network component of an unexpected kind")
        _tf_vars(comp, f"{prefix}{name}/", out)
    return out


def _tf_check(net: TFNetworkStub, role: str) -> dict:
    version = net.state.get("version", 0)
    if not isinstance(version, int) or version < 4:
        raise CheckpointError(f"TF {role} network version {version}: a StyleGAN1-era pickle, not StyleGAN2")
    return _tf_vars(net)


def _tf_modlayer(v: dict, src: str, dst: str, out: dict, flip: bool = False) -> None:
    w = v[f"{src}/weight"]
    if flip:
        w = w[::-1, ::-1]
    out[f"{dst}.weight"] = _t(w.transpose(3, 2, 0, 1))
    out[f"{dst}.bias"] = _t(v[f"{src}/bias"])
    out[f"{dst}.affine.weight"] = _t(v[f"{src}/mod_weight"].T)
    out[f"{dst}.affine.bias"] = _t(v[f"{src}/mod_bias"] + 1)
    if f"{src}/noise_strength" in v:
        out[f"{dst}.noise_strength"] = _t(np.asarray(v[f"{src}/noise_strength"], dtype=np.float32)).reshape([])


def _tf_dense(v: dict, src: str, dst: str, out: dict) -> None:
    out[f"{dst}.weight"] = _t(v[f"{src}/weight"].T)
    out[f"{dst}.bias"] = _t(v[f"{src}/bias"])


def _tf_lod_names(v: dict, kind: str, res: int) -> tuple[dict, bool]:
    """Rename ``ToRGB_lod{n}``/``FromRGB_lod{n}`` (architecture 'orig') to ``{r}x{r}/{kind}``."""
    out, renamed = {}, False
    for k, x in v.items():
        m = re.fullmatch(rf"(.*?){kind}_lod(\d+)/(.*)", k)
        if m:
            r = res >> int(m.group(2))
            k, renamed = f"{m.group(1)}{r}x{r}/{kind}/{m.group(3)}", True
        out[k] = x
    return out, renamed


def _tf_generator(net: TFNetworkStub) -> tuple[dict, dict]:
    v = _tf_check(net, "generator")
    if "synthesis/4x4/Const/const" not in v or "synthesis/4x4/Conv/mod_weight" not in v:
        raise CheckpointError("a TF generator without StyleGAN2 layers (StyleGAN1 or another network)")
    res = sorted({int(m.group(1)) for k in v if (m := re.match(r"synthesis/(\d+)x\1/", k))})
    v, orig = _tf_lod_names(v, "ToRGB", res[-1])
    sd = {"mapping.w_avg": _t(v["dlatent_avg"])}
    for i in range(len([k for k in v if re.fullmatch(r"mapping/Dense\d+/weight", k)])):
        _tf_dense(v, f"mapping/Dense{i}", f"mapping.fc{i}", sd)
    if "mapping/LabelEmbed/weight" in v:
        _tf_dense(v, "mapping/LabelEmbed", "mapping.embed", sd)
    sd["synthesis.b4.const"] = _t(v["synthesis/4x4/Const/const"][0])
    for r in res:
        p, log2 = f"synthesis/{r}x{r}", int(math.log2(r))
        if r == 4:
            _tf_modlayer(v, f"{p}/Conv", "synthesis.b4.conv1", sd)
            sd["synthesis.b4.conv1.noise_const"] = _t(v["synthesis/noise0"][0, 0])
        else:
            _tf_modlayer(v, f"{p}/Conv0_up", f"synthesis.b{r}.conv0", sd, flip=True)
            _tf_modlayer(v, f"{p}/Conv1", f"synthesis.b{r}.conv1", sd)
            sd[f"synthesis.b{r}.conv0.noise_const"] = _t(v[f"synthesis/noise{2 * log2 - 5}"][0, 0])
            sd[f"synthesis.b{r}.conv1.noise_const"] = _t(v[f"synthesis/noise{2 * log2 - 4}"][0, 0])
            if f"{p}/Skip/weight" in v:
                sd[f"synthesis.b{r}.skip.weight"] = _t(v[f"{p}/Skip/weight"][::-1, ::-1].transpose(3, 2, 0, 1))
        if f"{p}/ToRGB/weight" in v and (r == res[-1] or not orig and f"{p}/Skip/weight" not in v):
            _tf_modlayer(v, f"{p}/ToRGB", f"synthesis.b{r}.torgb", sd)
    kw = net.state.get("static_kwargs") or {}
    return add_resample_filters(sd, generator=True), {"conv_clamp": kw.get("conv_clamp")}


def _tf_discriminator(net: TFNetworkStub) -> tuple[dict, dict]:
    v = _tf_check(net, "discriminator")
    if "4x4/Conv/weight" not in v or "Output/weight" not in v:
        raise CheckpointError("a TF discriminator without StyleGAN2 layers")
    res = sorted({int(m.group(1)) for k in v if (m := re.match(r"(\d+)x\1/", k))})
    v, orig = _tf_lod_names(v, "FromRGB", res[-1])
    conv = lambda x: _t(x.transpose(3, 2, 0, 1))  # noqa: E731
    sd = {}
    for r in res:
        p = f"{r}x{r}"
        if f"{p}/FromRGB/weight" in v and (r == res[-1] or not orig):
            sd[f"b{r}.fromrgb.weight"], sd[f"b{r}.fromrgb.bias"] = conv(v[f"{p}/FromRGB/weight"]), _t(v[f"{p}/FromRGB/bias"])
        if r == 4:
            continue
        for i, name in ((0, "Conv0"), (1, "Conv1_down")):
            sd[f"b{r}.conv{i}.weight"], sd[f"b{r}.conv{i}.bias"] = conv(v[f"{p}/{name}/weight"]), _t(v[f"{p}/{name}/bias"])
        if f"{p}/Skip/weight" in v:
            sd[f"b{r}.skip.weight"] = conv(v[f"{p}/Skip/weight"])
    sd["b4.conv.weight"], sd["b4.conv.bias"] = conv(v["4x4/Conv/weight"]), _t(v["4x4/Conv/bias"])
    _tf_dense(v, "4x4/Dense0", "b4.fc", sd)
    _tf_dense(v, "Output", "b4.out", sd)
    if "LabelEmbed/weight" in v:
        _tf_dense(v, "LabelEmbed", "mapping.embed", sd)
        for i in range(len([k for k in v if re.fullmatch(r"Mapping\d+/weight", k)])):
            _tf_dense(v, f"Mapping{i}", f"mapping.fc{i}", sd)
    kw = net.state.get("static_kwargs") or {}
    hints = {"conv_clamp": kw.get("conv_clamp"), "mbstd_group_size": kw.get("mbstd_group_size", 4)}
    return add_resample_filters(sd, generator=False), hints


def from_tf(nets: tuple):
    tf_G, tf_D, tf_Gs = nets
    try:
        G_ema, g_hints = _tf_generator(tf_Gs)
        G, _ = _tf_generator(tf_G)
        D, d_hints = _tf_discriminator(tf_D)
    except KeyError as e:
        raise CheckpointError(f"a TF StyleGAN2 pickle of an unknown layout: no variable {e}") from None
    meta = {"tf_static_kwargs": {k: v for k, v in (tf_Gs.state.get("static_kwargs") or {}).items()
                                 if isinstance(v, (int, float, str, bool, type(None)))}}
    return G, D, G_ema, "TF-era stylegan2 pickle", g_hints, d_hints, meta


# ---------------------------------------------------------------------------- rosinality .pt

def _check_kernel(k: torch.Tensor, name: str) -> None:
    if k.shape != (4, 4) or not torch.allclose(k / k.sum(), standard_filter(), atol=1e-6):
        raise CheckpointError(f"{name}: a blur kernel other than [1,3,3,1] is not supported")


def _rosi_modconv(src: dict, s: str, dst: str, out: dict) -> None:
    out[f"{dst}.weight"] = src.pop(f"{s}.conv.weight").squeeze(0)
    out[f"{dst}.affine.weight"] = src.pop(f"{s}.conv.modulation.weight")
    out[f"{dst}.affine.bias"] = src.pop(f"{s}.conv.modulation.bias")
    if f"{s}.conv.blur.kernel" in src:
        _check_kernel(src.pop(f"{s}.conv.blur.kernel"), s)


def _rosi_styled(src: dict, s: str, dst: str, noise: torch.Tensor, out: dict) -> None:
    _rosi_modconv(src, s, dst, out)
    out[f"{dst}.noise_strength"] = src.pop(f"{s}.noise.weight").reshape([])
    out[f"{dst}.bias"] = src.pop(f"{s}.activate.bias")
    out[f"{dst}.noise_const"] = noise.reshape(noise.shape[-2:])


def _rosi_torgb(src: dict, s: str, dst: str, out: dict) -> None:
    _rosi_modconv(src, s, dst, out)
    out[f"{dst}.bias"] = src.pop(f"{s}.bias").reshape(-1)
    if f"{s}.upsample.kernel" in src:
        _check_kernel(src.pop(f"{s}.upsample.kernel"), s)


def _rosi_generator(sd: dict, latent_avg) -> dict:
    src, out = dict(sd), {}
    n_mlp = len([k for k in src if re.fullmatch(r"style\.\d+\.weight", k)])
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = src.pop(f"style.{i + 1}.weight")
        out[f"mapping.fc{i}.bias"] = src.pop(f"style.{i + 1}.bias")
    w_dim = out[f"mapping.fc{n_mlp - 1}.weight"].shape[0]
    out["mapping.w_avg"] = latent_avg.reshape(w_dim).float() if latent_avg is not None else torch.zeros(w_dim)
    out["synthesis.b4.const"] = src.pop("input.input")[0]
    _rosi_styled(src, "conv1", "synthesis.b4.conv1", src.pop("noises.noise_0"), out)
    _rosi_torgb(src, "to_rgb1", "synthesis.b4.torgb", out)
    for k in range(len([k for k in src if re.fullmatch(r"to_rgbs\.\d+\.bias", k)])):
        b = f"synthesis.b{2 ** (k + 3)}"
        _rosi_styled(src, f"convs.{2 * k}", f"{b}.conv0", src.pop(f"noises.noise_{2 * k + 1}"), out)
        _rosi_styled(src, f"convs.{2 * k + 1}", f"{b}.conv1", src.pop(f"noises.noise_{2 * k + 2}"), out)
        _rosi_torgb(src, f"to_rgbs.{k}", f"{b}.torgb", out)
    if src:
        raise CheckpointError(f"rosinality generator with unknown tensors: {sorted(src)[:5]}")
    return add_resample_filters(out, generator=True)


def _rosi_discriminator(sd: dict) -> dict:
    src, out = dict(sd), {}
    blocks = len({m.group(1) for k in src if (m := re.fullmatch(r"convs\.(\d+)\.conv1\.0\.weight", k))})
    R = 2 ** (blocks + 2)
    out[f"b{R}.fromrgb.weight"], out[f"b{R}.fromrgb.bias"] = src.pop("convs.0.0.weight"), src.pop("convs.0.1.bias")
    for j in range(1, blocks + 1):
        b, s = f"b{R >> (j - 1)}", f"convs.{j}"
        out[f"{b}.conv0.weight"], out[f"{b}.conv0.bias"] = src.pop(f"{s}.conv1.0.weight"), src.pop(f"{s}.conv1.1.bias")
        out[f"{b}.conv1.weight"], out[f"{b}.conv1.bias"] = src.pop(f"{s}.conv2.1.weight"), src.pop(f"{s}.conv2.2.bias")
        out[f"{b}.skip.weight"] = src.pop(f"{s}.skip.1.weight")
        _check_kernel(src.pop(f"{s}.conv2.0.kernel"), s)
        _check_kernel(src.pop(f"{s}.skip.0.kernel"), s)
    out["b4.conv.weight"], out["b4.conv.bias"] = src.pop("final_conv.0.weight"), src.pop("final_conv.1.bias")
    for i, name in ((0, "fc"), (1, "out")):
        out[f"b4.{name}.weight"] = src.pop(f"final_linear.{i}.weight")
        out[f"b4.{name}.bias"] = src.pop(f"final_linear.{i}.bias")
    if src:
        raise CheckpointError(f"rosinality discriminator with unknown tensors: {sorted(src)[:5]}")
    return add_resample_filters(out, generator=False)


def from_rosinality(obj: dict):
    latent_avg = obj.get("latent_avg")
    try:
        G_ema = _rosi_generator(obj["g_ema"], latent_avg)
        G = _rosi_generator(obj["g"], latent_avg) if isinstance(obj.get("g"), dict) else None
        D = _rosi_discriminator(obj["d"]) if isinstance(obj.get("d"), dict) else None
    except KeyError as e:
        raise CheckpointError(f"a rosinality checkpoint of an unknown layout: no tensor {e}") from None
    meta = {"w_avg_missing": latent_avg is None}
    return G, D, G_ema, "rosinality .pt", {"conv_clamp": None}, {"conv_clamp": None, "mbstd_group_size": 4}, meta
