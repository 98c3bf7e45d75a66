"""Atelier's native checkpoint: one ``.safetensors`` file, weights plus JSON metadata.

Tensors are named ``G_ema.<name>``, ``G.<name>``, ``D.<name>`` (official names) and
``extra.<name>`` (anything else a caller keeps, e.g. flattened optimiser state). The header's
``__metadata__`` maps ``"atelier"`` to one JSON string: format, format_version, g_kwargs,
d_kwargs and the caller's metadata (provenance, training options, step...). Never pickle.
"""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from core.storage import atomic_path

from .safe_pickle import CheckpointError

FORMAT = "atelier-native"
FORMAT_VERSION = 1
_NETS = ("G_ema", "G", "D")


def write_native(path, nets: dict, g_kwargs: dict, d_kwargs: dict | None, metadata: dict | None,
                 extra_tensors: dict | None) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, sd in nets.items():
        for name, t in (sd or {}).items():
            tensors[f"{prefix}.{name}"] = t.detach().to("cpu").contiguous().clone()
    for name, t in (extra_tensors or {}).items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"extra tensor {name!r} is not a tensor")
        tensors[f"extra.{name}"] = t.detach().to("cpu").contiguous().clone()
    header = dict(format=FORMAT, format_version=FORMAT_VERSION, g_kwargs=g_kwargs, d_kwargs=d_kwargs,
                  metadata=metadata or {})
    text = json.dumps(header, sort_keys=True)  # raises on anything not JSON-safe, before writing
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"atelier": text})


def read_safetensors_header(f) -> dict:
    """The JSON header of the safetensors file open at its start in ``f`` (tensor names to dtype,
    shape and data offsets; ``__metadata__``), leaving ``f`` where the tensor data begins."""
    (n,) = struct.unpack("<Q", f.read(8))
    if n > 100_000_000:
        raise CheckpointError(f"{Path(f.name).name}: safetensors header too large")
    return json.loads(f.read(n))


def _atelier_metadata(path: Path, header: dict) -> dict:
    try:
        meta = json.loads(header["__metadata__"]["atelier"])
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path.name} is not an Atelier native checkpoint (no readable metadata)") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: unknown safetensors layout {meta.get('format')!r}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path.name}: native format version {meta['format_version']} is newer than this Atelier")
    return meta


def read_native_metadata(path) -> dict:
    """The JSON header of a native file (format, format_version, g_kwargs, d_kwargs, metadata)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            header = read_safetensors_header(f)
    except (OSError, struct.error, ValueError):
        raise CheckpointError(f"{path.name} is not an Atelier native checkpoint (no readable metadata)") from None
    return _atelier_metadata(path, header)


def copy_native_keeping(src, dest, keep: tuple[str, ...]) -> None:
    """Copy a native file keeping only the ``keep`` keys of the caller's metadata; the tensors, the
    architecture and the format fields are unchanged. The tensors' offsets count from the end of the
    header, so only the header is rewritten (padded with spaces to 8 bytes, as safetensors does)."""
    src = Path(src)
    with open(src, "rb") as f:
        header = read_safetensors_header(f)
        meta = _atelier_metadata(src, header)
        meta["metadata"] = {k: v for k, v in (meta.get("metadata") or {}).items() if k in keep}
        header["__metadata__"] = dict(header.get("__metadata__") or {}, atelier=json.dumps(meta, sort_keys=True))
        body = json.dumps(header, separators=(",", ":")).encode()
        body += b" " * (-len(body) % 8)
        with atomic_path(dest) as tmp, open(tmp, "wb") as out:
            out.write(struct.pack("<Q", len(body)) + body)
            shutil.copyfileobj(f, out, 1 << 20)


def read_native_tensors(path) -> dict[str, dict[str, torch.Tensor]]:
    """{'G_ema': sd, 'G': sd, 'D': sd, 'extra': dict} (missing parts as empty dicts)."""
    out: dict[str, dict] = {k: {} for k in (*_NETS, "extra")}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():
                prefix, _, name = key.partition(".")
                if prefix not in out or not name:
                    raise CheckpointError(f"{Path(path).name}: unexpected tensor {key!r}")
                out[prefix][name] = f.get_tensor(key)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{Path(path).name}: damaged safetensors file ({e})") from None
    return out


def read_native_state(path):
    """(arguments for ``formats._finish``, extra tensors) of a native file."""
    meta = read_native_metadata(path)
    parts = read_native_tensors(path)
    if not parts["G_ema"]:
        raise CheckpointError(f"{Path(path).name}: no G_ema tensors")
    metadata = dict(meta.get("metadata") or {})
    metadata["extra_tensor_names"] = sorted(parts["extra"])
    args = (parts["G"] or None, parts["D"] or None, parts["G_ema"], FORMAT, {}, {}, metadata,
            meta["g_kwargs"], meta.get("d_kwargs"))
    return args, parts["extra"]
