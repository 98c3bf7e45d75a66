"""``load_checkpoint`` / ``save_checkpoint``: every supported file in, Atelier's native file out.

Loading reads official names and inferred kwargs from ``formats.read_checkpoint``, builds our own
``Generator``/``Discriminator`` and copies every tensor after checking that the key sets and
shapes agree exactly (no ``strict=False``). Nothing from the file is ever executed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .formats import read_checkpoint
from .native import read_native_metadata, write_native
from .safe_pickle import CheckpointError

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint", "read_native_metadata"]

W_AVG_SAMPLES = 10_000  # z samples for estimating w_avg when a file has none (rosinality train.py)


@dataclass
class Checkpoint:
    G_ema: torch.nn.Module
    G: torch.nn.Module | None
    D: torch.nn.Module | None
    resolution: int
    z_dim: int
    w_dim: int
    num_ws: int
    c_dim: int
    g_kwargs: dict
    d_kwargs: dict | None
    metadata: dict
    source_format: str
    extra_tensors: dict = field(default_factory=dict)  # native files only: e.g. optimiser state


def _examples(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")


def build_network(cls, kwargs: dict, sd: dict, what: str) -> torch.nn.Module:
    """``cls(**kwargs)`` with every tensor of ``sd`` copied in; key or shape mismatches raise."""
    try:
        net = cls(**kwargs)
    except (TypeError, ValueError, AssertionError) as e:
        raise CheckpointError(f"{what}: unsupported architecture {kwargs} ({e})") from None
    expected = net.state_dict()
    missing, unknown = expected.keys() - sd.keys(), sd.keys() - expected.keys()
    if missing or unknown:
        raise CheckpointError(f"{what}: tensors do not match the network built from {kwargs}: "
                              f"missing {_examples(missing) or 'none'}; unknown {_examples(unknown) or 'none'}")
    for k, t in expected.items():
        if tuple(sd[k].shape) != tuple(t.shape):
            raise CheckpointError(f"{what}: {k} has shape {tuple(sd[k].shape)}, the network expects {tuple(t.shape)}")
    with torch.no_grad():
        for k, t in expected.items():
            t.copy_(sd[k])
    return net.eval()


@torch.no_grad()
def _estimate_w_avg(G: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(W_AVG_SAMPLES, G.z_dim, generator=gen)
    ws = G.mapping(z, None)
    G.mapping.w_avg.copy_(ws[:, 0].mean(0))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load any supported StyleGAN2 checkpoint (see ``formats``) into Atelier's networks."""
    from .networks import Discriminator, Generator

    data = read_checkpoint(path)
    g_kwargs, d_kwargs = data["g_kwargs"], data["d_kwargs"]
    G_ema = build_network(Generator, g_kwargs, data["G_ema"], "G_ema")
    G = build_network(Generator, g_kwargs, data["G"], "G") if data["G"] is not None else None
    D = build_network(Discriminator, d_kwargs, data["D"], "D") if data["D"] is not None else None
    metadata = dict(data["metadata"])
    if metadata.pop("w_avg_missing", False):
        for net in (G_ema, G):
            if net is not None:
                _estimate_w_avg(net)
        metadata["w_avg_estimated"] = True
    G_ema.requires_grad_(False)
    device = torch.device(device)
    return Checkpoint(G_ema=G_ema.to(device), G=G.to(device) if G is not None else None,
                      D=D.to(device) if D is not None else None, resolution=G_ema.img_resolution,
                      z_dim=G_ema.z_dim, w_dim=G_ema.w_dim, num_ws=G_ema.num_ws, c_dim=G_ema.c_dim,
                      g_kwargs=dict(g_kwargs), d_kwargs=dict(d_kwargs) if d_kwargs else None,
                      metadata=metadata, source_format=data["source_format"],
                      extra_tensors=data.get("extra_tensors") or {})


def save_checkpoint(path: str | Path, *, G_ema: torch.nn.Module, G: torch.nn.Module | None = None,
                    D: torch.nn.Module | None = None, metadata: dict | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Write the native ``.safetensors`` file atomically; ``load_checkpoint`` gives it back bit for bit."""
    if G is not None and dict(G.init_kwargs) != dict(G_ema.init_kwargs):
        raise ValueError("G and G_ema must have the same architecture")
    nets = {"G_ema": G_ema.state_dict()}
    if G is not None:
        nets["G"] = G.state_dict()
    if D is not None:
        nets["D"] = D.state_dict()
    write_native(path, nets, dict(G_ema.init_kwargs), dict(D.init_kwargs) if D is not None else None,
                 metadata, extra_tensors)
