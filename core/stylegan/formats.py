"""Read any supported checkpoint file into official-named state dicts, without running its code.

``read_checkpoint(path)`` returns ``{'G', 'D', 'G_ema', 'source_format', 'g_kwargs', 'd_kwargs',
'metadata'}``: state dicts with stylegan2-ada-pytorch names (G and D may be None) and the
architecture kwargs inferred from their shapes. The format is told by content, not by name:
a zip archive is a ``torch.save`` file (read with ``weights_only=True``), a safetensors header is
Atelier's native format, a pickle stream is an official or TF-era network pickle.
"""
from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

import torch

from . import convert_legacy
from .infer import infer_d_kwargs, infer_g_kwargs
from .safe_pickle import CheckpointError, PersistentStub, TFNetworkStub, safe_load

NATIVE_FORMAT = "atelier-native"
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # first object of a pre-zip torch.save stream


def sniff(head: bytes) -> str:
    """'zip', 'safetensors', 'pickle' or 'unknown' from the first bytes of a file."""
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 2 <= n < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if head[:1] in (b"(", b"}", b"]"):  # protocol 0/1 streams
        return "pickle"
    return "unknown"


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise CheckpointError(f"cannot read {path.name}: {e.strerror}") from None
    if not head:
        raise CheckpointError(f"{path.name} is empty")
    kind = sniff(head)
    if kind == "safetensors":
        from .native import read_native_state

        args, extra = read_native_state(path)
        return {**_finish(*args), "extra_tensors": extra}
    if kind == "zip":
        return _from_object(torch_load(path), "torch.save file")
    if kind == "pickle":
        obj = safe_load(path.read_bytes())
        if isinstance(obj, int) and obj == _LEGACY_TORCH_MAGIC:
            return _from_object(torch_load(path), "torch.save file (legacy)")
        return _from_object(obj, "pickle")
    raise CheckpointError(f"{path.name} is not a checkpoint: unknown content (not a pickle, zip or safetensors)")


def torch_load(path: Path):
    """A torch.save file through torch's weights-only loader; CheckpointError with one line otherwise."""
    if path.read_bytes()[:4] == _ZIP_MAGIC and not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path.name} is a damaged or truncated archive")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        if "Unsupported global" in str(e) or "weights_only" in str(e):
            # torch's message is a paragraph of advice; keep only the global it refused
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
            why = f"it asks for {found.group(1)}" if found else "refused by the weights-only loader"
            raise CheckpointError(f"refused: {path.name} holds objects other than tensors ({why})") from None
        raise CheckpointError(f"{path.name} could not be read as a torch file ({msg})") from None


def _from_object(obj, container: str) -> dict:
    if isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(n, TFNetworkStub) for n in obj):
        return _finish(*convert_legacy.from_tf(obj))
    if isinstance(obj, dict) and isinstance(obj.get("G_ema"), PersistentStub):
        return _finish(*_from_official(obj))
    if isinstance(obj, dict) and "g_ema" in obj:
        return _finish(*convert_legacy.from_rosinality(obj))
    if isinstance(obj, dict) and "mapping.fc0.weight" in obj and "synthesis.b4.const" in obj:
        sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        return _finish(None, None, sd, f"official-named G state dict ({container})", {}, {}, {})
    if isinstance(obj, dict) and any(isinstance(v, PersistentStub) for v in obj.values()):
        raise CheckpointError("an official-style pickle without G_ema: nothing to generate with")
    raise CheckpointError(f"unrecognised {container}: not a StyleGAN2 checkpoint of a known layout")


# ---------------------------------------------------------------------------- official pickles

def walk_module(stub: PersistentStub, prefix: str = "", attrs: dict | None = None) -> tuple[dict, dict]:
    """Merge ``_parameters`` and persistent ``_buffers`` of a module tree into a state dict.

    Also collects each layer's plain attributes (``conv_clamp``, ``group_size``, ...) by prefix."""
    sd: dict[str, torch.Tensor] = {}
    attrs = {} if attrs is None else attrs
    state = stub.state
    skip = state.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        for name, t in (state.get(group) or {}).items():
            if t is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(t, torch.Tensor):
                raise CheckpointError(f"{prefix}{name} is not a tensor")
            sd[prefix + name] = t
    attrs[prefix.rstrip(".")] = {k: v for k, v in state.items()
                                  if not k.startswith("_") and isinstance(v, (int, float, str, bool, type(None)))}
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PersistentStub):
            raise CheckpointError(f"{prefix}{name}: a submodule of an unexpected kind")
        child_sd, _ = walk_module(child, f"{prefix}{name}.", attrs)
        sd.update(child_sd)
    return sd, attrs


def refuse_other_generators(sd: dict) -> None:
    if any(k.startswith("synthesis.input.") or re.match(r"synthesis\.L\d+_", k) for k in sd):
        raise CheckpointError("a StyleGAN3 (alias-free T/R) network: Atelier trains StyleGAN2 only")
    if not any(k.startswith("synthesis.b4.") for k in sd):
        raise CheckpointError("not a StyleGAN2 generator: no synthesis.b4 block")


def _attr(attrs: dict, prefix: str, name: str, default=None):
    return attrs.get(prefix, {}).get(name, default)


def _from_official(data: dict):
    G_ema, G_ema_attrs = walk_module(data["G_ema"])
    refuse_other_generators(G_ema)
    G = walk_module(data["G"])[0] if isinstance(data.get("G"), PersistentStub) else None
    D, D_attrs = walk_module(data["D"]) if isinstance(data.get("D"), PersistentStub) else (None, {})
    init = data["G_ema"].state.get("_init_kwargs") or {}
    flavour = "stylegan2-ada-pytorch" if "synthesis_kwargs" in init else "stylegan3-repo stylegan2"
    g_fp16 = sum(bool(a.get("use_fp16")) for p, a in G_ema_attrs.items() if re.fullmatch(r"synthesis\.b\d+", p))
    g_hints = dict(conv_clamp=_attr(G_ema_attrs, "synthesis.b4.conv1", "conv_clamp"), num_fp16_res=g_fp16)
    d_hints = {}
    if D is not None:
        d_fp16 = sum(bool(a.get("use_fp16")) for p, a in D_attrs.items() if re.fullmatch(r"b\d+", p))
        d_hints = dict(conv_clamp=_attr(D_attrs, "b4.conv", "conv_clamp"), num_fp16_res=d_fp16,
                       mbstd_group_size=_attr(D_attrs, "b4.mbstd", "group_size", 4))
    meta = {"training_set_kwargs": _plain(data.get("training_set_kwargs")),
            "had_augment_pipe": data.get("augment_pipe") is not None}
    return G, D, G_ema, f"{flavour} pickle", g_hints, d_hints, meta


def _plain(obj):
    """A JSON-safe copy of init/training kwargs (dicts, lists, scalars); anything else as str."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    try:
        return obj.item()  # numpy scalars
    except Exception:  # noqa: BLE001
        return str(obj)


# ---------------------------------------------------------------------------- common tail

def _finish(G, D, G_ema, source_format, g_hints, d_hints, metadata, g_kwargs=None, d_kwargs=None) -> dict:
    refuse_other_generators(G_ema)
    g_kwargs = g_kwargs or infer_g_kwargs(G_ema, g_hints)
    if G is not None:
        refuse_other_generators(G)
        if _shape_kwargs(infer_g_kwargs(G, g_hints)) != _shape_kwargs(g_kwargs):
            raise CheckpointError("G and G_ema have different architectures")
    if D is not None and d_kwargs is None:
        d_kwargs = infer_d_kwargs(D, d_hints)
        if d_kwargs["img_resolution"] != g_kwargs["img_resolution"]:
            raise CheckpointError("D and G have different resolutions")
    json.dumps(metadata)  # must stay JSON-safe for the native format
    return dict(G=G, D=D, G_ema=G_ema, source_format=source_format, g_kwargs=g_kwargs,
                d_kwargs=d_kwargs if D is not None else None, metadata=metadata, extra_tensors={})


def _shape_kwargs(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k not in ("conv_clamp", "num_fp16_res")}
