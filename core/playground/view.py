"""The Playground as a person uses it: one call per action, always on behalf of one user.

A :class:`View` holds what the page shows (model key, where the latent comes from, ψ, noise, style
mixing, a direction set and its slider strengths); ``render_view`` draws it, ``keep_view`` keeps its
latent as a named vector. Sources: ``seed`` (the seed, or a pasted / uploaded vector when there is
one), ``vector:<id>`` (the user's library), ``projection:<task id>`` (the user's own projection).
Direction sets: ``sefa:<group>``, ``ganspace:<group>`` (group all / coarse / middle / fine) and
``saved`` (the directions the user saved with this model, named by them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import library
from .common import PlaygroundError, VectorError, load_model
from .directions import found_directions, layer_groups
from .photo import PROJECTIONS, projection_result
from .preview import Edit, NoiseMaps, RenderArgs, render
from .refs import model_fingerprint, model_label, resolve_model
from .vectors import Vector, load_vector, vector_to_latent

SLOTS = 6
GROUP_LABELS = {"all": "all layers", "coarse": "coarse (pose, shape)", "middle": "middle (features)",
                "fine": "fine (colour, texture)"}


@dataclass(frozen=True)
class View:
    model: str
    source: str = "seed"
    seed: int = 0
    vector_text: str = ""
    vector_file: str | None = None
    psi: float = 0.7
    noise_mode: str = "const"
    mix_seed: int | None = None
    mix_layers: str = "0-4"
    direction_set: str = "sefa:all"
    strengths: tuple = ()


def direction_set_choices(user: str, model_key: str) -> list[tuple[str, str]]:
    """(label, value) of the direction sets this model offers (its layer groups; saved ones if any)."""
    ckpt = load_model(resolve_model(model_key, user))
    groups = layer_groups(ckpt)
    out = [(f"{m} · {GROUP_LABELS[g]}", f"{key}:{g}") for key, m in (("sefa", "SeFa"), ("ganspace", "GANSpace"))
           for g in groups]
    return out + [("Saved with this model (your names)", "saved")]


def direction_slots(user: str, model_path, set_name: str) -> list[dict]:
    """Up to SLOTS sliders: ``{"name", "direction", "layers", "id" (saved ones)}``."""
    if set_name == "saved":
        out = []
        for rec in library.list_directions(user, model_fingerprint(model_path))[:SLOTS]:
            _, d = library.get_direction(user, rec["id"])
            out.append({"name": rec["name"], "direction": d, "layers": tuple(rec["layers"]), "id": rec["id"]})
        return out
    method, _, group = (set_name or "").partition(":")
    return found_directions(model_path, method, group or "all", k=SLOTS)


def _guess_space(array: np.ndarray, ckpt) -> str:
    return "z" if array.ndim == 1 and array.size == ckpt.z_dim else "w"


def _source(user: str, view: View, model_path, ckpt):
    """(Vector or None, NoiseMaps or None, is-z) for the view's source."""
    kind, _, ref = (view.source or "seed").partition(":")
    if kind == "vector":
        rec, array, noise = library.get_vector(user, ref)
        return Vector.of(array, rec["space"]), NoiseMaps.of(noise), rec["space"] == "z"
    if kind == "projection":
        res = projection_result(user, ref)
        if res.model_fp != model_fingerprint(model_path):
            raise PlaygroundError("That projection was made in another model: project the photo in this one")
        return Vector.of(res.ws, "w"), NoiseMaps.of(res.noise), False
    if kind != "seed":
        raise PlaygroundError("Start from a seed, a saved vector or a projection")
    pasted = load_vector(view.vector_file) if view.vector_file else (
        load_vector(view.vector_text) if (view.vector_text or "").strip() else None)
    if pasted is None:
        return None, None, True
    space = _guess_space(pasted, ckpt)
    return Vector.of(pasted, space), None, space == "z"


def view_args(user: str, view: View) -> RenderArgs:
    model_path = resolve_model(view.model, user)
    ckpt = load_model(model_path)
    vector, noise, _ = _source(user, view, model_path, ckpt)
    try:
        lo, hi = (int(x) for x in str(view.mix_layers or "0-4").split("-"))
    except ValueError:
        raise PlaygroundError("Mixing layers are written like 0-4") from None
    strengths = [float(s or 0) for s in (view.strengths or ())][:SLOTS]
    edits = ()
    if any(strengths):
        slots = direction_slots(user, model_path, view.direction_set)
        edits = tuple(Edit(Vector.of(s["direction"]), s["layers"][0], s["layers"][1], v)
                      for s, v in zip(slots, strengths) if v)
    return RenderArgs(model=model_path, seed=int(view.seed or 0), vector=vector, psi=float(view.psi),
                      noise_mode=view.noise_mode, mix_seed=None if view.mix_seed in (None, "") else int(view.mix_seed),
                      mix_layers=(lo, hi), edits=edits, noise=noise)


def render_view(user: str, view: View) -> dict:
    """``{"image", "error", ...}`` as ``render``; a bad source or model becomes the error."""
    try:
        args = view_args(user, view)
    except PlaygroundError as e:
        return {"image": None, "error": str(e)}
    return render(args)


def keep_view(user: str, view: View, name: str) -> tuple[dict, str]:
    """Keep the view's latent as a named vector; (record, a sentence saying what was kept).

    A plain seed or z vector (no mixing, no direction) is kept as z: it renders at any ψ. Anything
    else is kept as w for every layer, un-truncated, so that it renders as now at the same ψ."""
    name = library.check_name(name, "vector")
    args = view_args(user, view)
    model_path = args.model
    ckpt = load_model(model_path)
    _, noise, is_z = _source(user, view, model_path, ckpt)
    out = render(args)
    if out["error"]:
        raise PlaygroundError(out["error"])
    fp, label = model_fingerprint(model_path), model_label(view.model, user)
    check = lambda a, s: vector_to_latent(a, s, ckpt.z_dim, ckpt.w_dim, ckpt.num_ws)  # noqa: E731
    if is_z and args.mix_seed is None and not args.edits and out["z"] is not None:
        src = f"seed {out['seed']}" if out["seed"] is not None else "z vector"
        rec = library.save_vector(user, name, out["z"], "z", model_fp=fp, model_label=label, shape_check=check,
                                  source=src)
        return rec, f"Kept “{rec['name']}” as z ({src}); it renders at any ψ."
    if args.psi == 0:
        raise PlaygroundError("At ψ = 0 every latent is the average one: raise ψ to keep a vector")
    w_avg = ckpt.G_ema.mapping.w_avg.cpu().numpy()
    ws = out["w"] if args.psi == 1 else w_avg + (out["w"] - w_avg) / np.float32(args.psi)
    rec = library.save_vector(user, name, ws, "w", model_fp=fp, model_label=label, shape_check=check,
                              source=view.source.partition(":")[0],
                              noise=noise.arrays() if noise is not None and args.noise_mode == "const" else None)
    return rec, f"Kept “{rec['name']}” as w ({ckpt.num_ws} x {ckpt.w_dim})."


def source_choices(user: str, model_key: str) -> list[tuple[str, str]]:
    """(label, value) of what the view can start from for this model: seed, vectors, projections."""
    fp = model_fingerprint(resolve_model(model_key, user))
    out = [("Seed (or the pasted vector)", "seed")]
    out += [(f"Vector: {r['name']} ({r['space']})", f"vector:{r['id']}") for r in library.list_vectors(user, fp)]
    for t in reversed(PROJECTIONS.list(user)):
        res = t["result"]
        if res is not None and res.model_fp == fp:
            out.append((f"Projected photo ({res.psnr:.1f} dB, {t['id'][:6]})", f"projection:{t['id']}"))
    return out


def save_slot(user: str, model_key: str, set_name: str, slot: int, name: str) -> dict:
    """Name slider ``slot``: a saved direction is renamed, a found one is saved with the model."""
    model_path = resolve_model(model_key, user)
    slots = direction_slots(user, model_path, set_name)
    if not isinstance(slot, (int, np.integer)) or not 0 <= slot < len(slots):
        raise PlaygroundError(f"Choose a slider from 1 to {len(slots)}")
    s = slots[slot]
    if set_name == "saved":
        return library.rename(user, "directions", s["id"], name)
    return library.save_direction(user, name, s["direction"], model_fp=model_fingerprint(model_path),
                                  method=set_name, layers=s["layers"], index=int(slot))


def delete_slot(user: str, model_key: str, slot: int) -> dict:
    slots = direction_slots(user, resolve_model(model_key, user), "saved")
    if not isinstance(slot, (int, np.integer)) or not 0 <= slot < len(slots):
        raise PlaygroundError("Choose one of your saved directions (the 'Saved with this model' set)")
    return library.delete(user, "directions", slots[slot]["id"])


def import_vector(user: str, model_key: str, source, name: str, space: str = "auto") -> dict:
    """A ``.npy`` file (path or bytes) into the library, for this model; 'auto' tells z from w by shape."""
    model_path = resolve_model(model_key, user)
    ckpt = load_model(model_path)
    array = load_vector(source if isinstance(source, (bytes, bytearray)) else _as_npy_path(source))
    if space == "auto":
        space = _guess_space(array, ckpt)
    check = lambda a, s: vector_to_latent(a, s, ckpt.z_dim, ckpt.w_dim, ckpt.num_ws)  # noqa: E731
    return library.save_vector(user, name, array, space, model_fp=model_fingerprint(model_path),
                               model_label=model_label(model_key, user), shape_check=check, source="import")


def _as_npy_path(source):
    from pathlib import Path
    if not source:
        raise VectorError("Choose a .npy file to import")
    return Path(source)


# ---- keyframe walks -------------------------------------------------------------------------

def keyframe_items(items) -> list[str]:
    """Keyframes as the page sends them (a list, or text with commas) -> stripped items."""
    if isinstance(items, str):
        items = [items]
    out = []
    for item in items or []:
        out += [p.strip() for p in str(item).replace(";", ",").split(",") if p.strip()]
    return out


def keyframes_of(user: str, model_path, items) -> list:
    """Seeds, ``vector:<id>`` and ``projection:<id>`` items as walk keyframes for this model."""
    from .common import check_seed
    from .walks import Keyframe
    ckpt = load_model(model_path)
    keys = []
    for item in keyframe_items(items):
        kind, _, ref = item.partition(":")
        if item.isdigit():
            seed = check_seed(int(item))
            keys.append(Keyframe("z", np.random.RandomState(seed).randn(ckpt.z_dim), f"seed {seed}"))
        elif kind == "vector":
            rec, array, _ = library.get_vector(user, ref)
            lat = vector_to_latent(array, rec["space"], ckpt.z_dim, ckpt.w_dim, ckpt.num_ws)
            keys.append(Keyframe(rec["space"], lat[0], rec["name"]))
        elif kind == "projection":
            res = projection_result(user, ref)
            if res.model_fp != model_fingerprint(model_path):
                raise PlaygroundError("A projected photo of another model cannot be a keyframe here")
            keys.append(Keyframe("w", res.ws, "projected photo"))
        else:
            raise PlaygroundError(f"A keyframe is a seed, a saved vector or a projected photo (not {item[:30]!r})")
    return keys


def _walk_args(interpolation, easing, loop, psi) -> dict:
    return dict(interpolation=interpolation, easing=easing, loop=bool(loop), psi=float(psi))


def walk_preview(user: str, model_key: str, items, seconds: float, fps: float, interpolation: str = "w-lerp",
                 easing: str = "smooth", loop: bool = True, psi: float = 0.7, count: int = 8) -> list[tuple[str, np.ndarray]]:
    """(caption, image) of ``count`` frames spread over the walk, before rendering it all."""
    from .walks import frames_for, preview_frames
    model_path = resolve_model(model_key, user)
    frames = frames_for(seconds, fps)
    keys = keyframes_of(user, model_path, items)
    shots = preview_frames(model_path, keys, frames, count, **_walk_args(interpolation, easing, loop, psi))
    return [(f"{i / fps:.1f} s", img) for i, img in shots]


def walk_video(user: str, model_key: str, items, dest, seconds: float = 10, fps: float = 24, size: int | None = None,
               interpolation: str = "w-lerp", easing: str = "smooth", loop: bool = True, psi: float = 0.7,
               progress_fn=None):
    from . import walks
    model_path = resolve_model(model_key, user)
    keys = keyframes_of(user, model_path, items)
    return walks.walk_video(model_path, keys, dest, seconds, fps, size, progress_fn,
                            **_walk_args(interpolation, easing, loop, psi))


def noise_loop_video(user: str, model_key: str, dest, seed: int = 0, wander: int = 1, seconds: float = 10,
                     fps: float = 24, size: int | None = None, psi: float = 0.7, progress_fn=None):
    from . import walks
    return walks.noise_loop_video(resolve_model(model_key, user), dest, seconds, fps, size, progress_fn,
                                  seed=int(seed or 0), wander=int(wander), psi=float(psi))


def slot_names(user: str, model_key: str, set_name: str) -> list[str]:
    """The names of a direction set's sliders (fewer than SLOTS for a short saved set)."""
    return [s["name"] for s in direction_slots(user, resolve_model(model_key, user), set_name)]


def seed_cells(user: str, model_key: str, start: int, count: int, psi: float,
               noise_mode: str) -> tuple[list[tuple], list[int]]:
    """(image, caption) of ``count`` seeds from ``start``, to browse, and those seeds in the same order."""
    from .common import check_seed
    from .grids import seed_grid
    start = check_seed(int(start or 0))
    seeds = list(range(start, min(start + count, 2 ** 32)))
    grid, seeds = seed_grid(resolve_model(model_key, user), seeds, psi=psi, noise_mode=noise_mode, cols=len(seeds))
    side = grid.size[1]
    return [(grid.crop((i * side, 0, (i + 1) * side, side)), f"seed {s}") for i, s in enumerate(seeds)], seeds


# ---- your photo -----------------------------------------------------------------------------

def crop_for_model(user: str, model_key: str, source, crop: str = "center", zoom: float = 1.0, cx: float = 0.5,
                   cy: float = 0.5) -> np.ndarray:
    """The photo as this model will be asked to draw it (its resolution, cropped), shown by whole pixels."""
    from .photo import for_display
    return for_display(_target(user, model_key, source, crop, zoom, cx, cy))


def _target(user: str, model_key: str, source, crop, zoom, cx, cy) -> np.ndarray:
    from .photo import prepare_target
    ckpt = load_model(resolve_model(model_key, user))
    return prepare_target(source, ckpt.resolution, crop, float(zoom), float(cx), float(cy))


def project_photo(user: str, model_key: str, source, options, crop: str = "center", zoom: float = 1.0,
                  cx: float = 0.5, cy: float = 0.5) -> str:
    """Crop the photo and start projecting it in the background; the task id."""
    from .photo import start_projection
    target = _target(user, model_key, source, crop, zoom, cx, cy)
    return start_projection(user, resolve_model(model_key, user), target, options)


def photo_status(user: str, model_key: str | None = None) -> dict:
    """The user's latest projection as the page shows it; once it is over, also the sources to start
    from (``sources``) with the projection first in line (``source``)."""
    from .photo import projection_view
    view = projection_view(user)
    if not view["active"] and view["state"] in ("done", "stopped") and model_key:
        sources = source_choices(user, model_key)
        mine = f"projection:{view['id']}"
        view.update(sources=sources, source=mine if mine in [v for _, v in sources] else None)
    return view


def vector_choices(user: str, model_key: str) -> list[tuple[str, str]]:
    """(label, id) of the user's vectors that belong to this model."""
    fp = model_fingerprint(resolve_model(model_key, user))
    return [(f"{r['name']} ({r['space']}, {r['created'][:10]})", r["id"]) for r in library.list_vectors(user, fp)]
