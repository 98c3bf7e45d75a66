"""Playground tab: pick a model, a seed or a vector, ψ and noise; the image follows the inputs.
A seed grid to browse (click a cell to take its seed) and a looping interpolation video."""
from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr

from core import checkpoints as ck_core
from core import models as models_core
from core import playground as pg_core
from core import video as video_core

from .common import MODELS, Nav, go_to, ok_text, safe, scratch_dir, user_of

ERRORS = (pg_core.PlaygroundError, models_core.ModelError, ck_core.CheckpointsError, video_core.VideoError)
GRID_SEEDS = 16
MAX_SEED = 2**32 - 1


@dataclass
class PlaygroundUI:
    tab: gr.Tab
    model: gr.Dropdown
    seed: gr.Number
    dice: gr.Button
    vector_text: gr.Textbox
    vector_file: gr.File
    psi: gr.Slider
    noise: gr.Radio
    mix_seed: gr.Number
    mix_layers: gr.Radio
    direction: gr.Dropdown
    strength: gr.Slider
    image: gr.Image
    message: gr.Markdown
    grid_start: gr.Number
    grid_btn: gr.Button
    grid: gr.Gallery
    interp_seeds: gr.Textbox
    interp_seconds: gr.Slider
    interp_btn: gr.Button
    interp_video: gr.Video
    empty_btn: gr.Button


def build_playground() -> PlaygroundUI:
    with gr.Tab("5 · Playground", id="playground") as tab:
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                model = gr.Dropdown(label="Model", choices=[], allow_custom_value=True, elem_id="atelier-pg-model")
                empty_btn = gr.Button("Your trained models are in My Models →", size="sm", variant="secondary")
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed", scale=3,
                                     elem_id="atelier-seed")
                    dice = gr.Button("⚄ Random seed", scale=1, min_width=90)
                with gr.Accordion("Or use a vector (paste numbers or upload .npy: z or w)", open=False):
                    vector_text = gr.Textbox(label="Vector", lines=3, placeholder="0.12, -1.3, 0.8, …")
                    vector_file = gr.File(label=".npy file", file_types=[".npy"], height=90)
                psi = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation ψ (lower: more typical)")
                noise = gr.Radio([("Constant", "const"), ("Random", "random"), ("None", "none")], value="const",
                                 label="Noise")
                with gr.Accordion("Style mixing and directions", open=False):
                    with gr.Row():
                        mix_seed = gr.Number(value=None, precision=0, minimum=0, label="Mix in seed (empty: off)")
                        mix_layers = gr.Radio([("Coarse: pose, shape", "0-4"), ("Middle: features", "4-8")],
                                              value="0-4", label="Take from it")
                    with gr.Row():
                        direction = gr.Dropdown([(f"SeFa direction {i + 1}", str(i)) for i in range(10)], value="0",
                                                label="Direction (found in the model's weights)")
                        strength = gr.Slider(-10, 10, value=0, step=0.5, label="Move along it")
                message = gr.Markdown(elem_classes=["atelier-msg"])
            with gr.Column(scale=3):
                image = gr.Image(label="Output", height=512, interactive=False, format="png",
                                 buttons=["download", "fullscreen"], elem_id="atelier-pg-image")
        with gr.Accordion("Browse seeds", open=True):
            with gr.Row():
                grid_start = gr.Number(value=0, precision=0, minimum=0, label="First seed", scale=1)
                grid_btn = gr.Button(f"Show {GRID_SEEDS} seeds", scale=1)
            grid = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel"], label="Click an image to take its seed", columns=8, height=300, allow_preview=False,
                              object_fit="contain")
        with gr.Accordion("Interpolation video (loops)", open=False):
            with gr.Row():
                interp_seeds = gr.Textbox(value="0, 1, 2", label="Seeds, in order", scale=2)
                interp_seconds = gr.Slider(0.5, 5, value=1.5, step=0.5, label="Seconds per transition", scale=2)
                interp_btn = gr.Button("Make the video", scale=1)
            interp_video = gr.Video(label="Interpolation", loop=True, autoplay=True, height=360)
    return PlaygroundUI(**{k: v for k, v in locals().items() if k in PlaygroundUI.__dataclass_fields__})


# ---- model keys: "model:<id>" (My Models, own or public) or "checkpoint:<name>" (bundled, imported) ----

def model_choices(user: str) -> list[tuple[str, str]]:
    cks = [c for c in ck_core.list_checkpoints(user) if c["state"] in ("bundled", "downloaded", "imported")]
    cks.sort(key=lambda c: c["kind"] != "bundled")
    mine = [(f"{m['name']} ({'mine' if m['mine'] else 'public, by ' + m['owner']})", f"model:{m['id']}")
            for m in models_core.list_models(user)]
    return [(f"{c['title']} · {c['resolution'] or '?'} px", f"checkpoint:{c['name']}") for c in cks
            if c["kind"] == "bundled"] + mine + [
        (f"{c['title']} · {c['resolution'] or '?'} px", f"checkpoint:{c['name']}") for c in cks if c["kind"] != "bundled"]


def model_path(key: str, user: str):
    kind, _, name = (key or "").partition(":")
    if kind == "model":
        return models_core.model_weights_path(name, user)
    if kind == "checkpoint":
        return ck_core.resolve_checkpoint(name, user, allow_paths=False)
    raise pg_core.PlaygroundError("Choose a model first.")


def vector_of(text: str, file) -> object:
    if file:
        return pg_core.load_vector(file)
    return pg_core.load_vector(text) if (text or "").strip() else None


def render_args(path, seed, vector, psi, noise, mix_seed, mix_layers, direction, strength) -> pg_core.RenderArgs:
    lo, hi = (int(x) for x in str(mix_layers or "0-4").split("-"))
    return pg_core.RenderArgs(model=path, seed=int(seed or 0), vector=vector, psi=float(psi), noise_mode=noise,
                              mix_seed=None if mix_seed in (None, "") else int(mix_seed), mix_layers=(lo, hi),
                              direction=("sefa", int(direction or 0)) if strength else None,
                              direction_strength=float(strength or 0))


def seeds_of(text: str) -> list[int]:
    try:
        return [int(s) for s in str(text).replace(",", " ").split()]
    except ValueError:
        raise pg_core.PlaygroundError("Seeds are whole numbers separated by commas, e.g. 1, 2, 3.") from None


def cells(grid_img, n: int) -> list:
    w, h = grid_img.size
    cols = min(n, 8)
    size = w // cols
    return [grid_img.crop(((i % cols) * size, (i // cols) * size, (i % cols + 1) * size, (i // cols + 1) * size))
            for i in range(n)]


# ---- wiring ------------------------------------------------------------------------------------

def wire_playground(ui: PlaygroundUI, nav: Nav) -> None:
    @safe(ui.message, ERRORS)
    def list_models(current, request: gr.Request):
        choices = model_choices(user_of(request))
        keys = [v for _, v in choices]
        value = current if current in keys else (keys[0] if keys else None)
        note = "" if keys else "⚠ No model available yet: train one, or add the bundled default model."
        return {ui.model: gr.Dropdown(choices=choices, value=value), ui.message: note}

    @safe(ui.message, ERRORS)
    def generate(model, seed, vector_text, vector_file, psi, noise, mix_seed, mix_layers, direction, strength,
                 request: gr.Request):
        args = render_args(model_path(model, user_of(request)), seed, vector_of(vector_text, vector_file), psi, noise,
                           mix_seed, mix_layers, direction, strength)
        out = pg_core.render(args)
        if out["error"]:
            return {ui.message: f"⚠ {out['error']}"}
        return {ui.image: out["image"], ui.message: ""}

    @safe(ui.message, ERRORS)
    def seed_grid(model, start, psi, noise, request: gr.Request):
        seeds = list(range(int(start or 0), int(start or 0) + GRID_SEEDS))
        img, seeds = pg_core.seed_grid(model_path(model, user_of(request)), seeds, psi=float(psi), noise_mode=noise,
                                       cols=8)
        return {ui.grid: [(c, f"seed {s}") for c, s in zip(cells(img, len(seeds)), seeds)], ui.message: ""}

    def take_seed(start, evt: gr.SelectData):
        return int(start or 0) + int(evt.index)

    @safe(ui.message, ERRORS)
    def interpolation_video(model, seeds, seconds, psi, request: gr.Request, progress=gr.Progress()):
        dest = video_core.interpolation_video(model_path(model, user_of(request)), seeds_of(seeds),
                                              scratch_dir() / "interpolation.mp4", seconds_per_transition=float(seconds),
                                              fps=12, psi=float(psi),
                                              progress_fn=lambda d, t: progress((d, t), desc="Rendering frames"))
        return {ui.interp_video: str(dest), ui.message: ok_text("The video loops: it ends where it starts.")}

    render_inputs = [ui.model, ui.seed, ui.vector_text, ui.vector_file, ui.psi, ui.noise, ui.mix_seed, ui.mix_layers,
                     ui.direction, ui.strength]
    gr.on([ui.tab.select, nav.demo.load], list_models, ui.model, [ui.model, ui.message],
          api_name="playground_models", show_progress="hidden")
    gr.on([ui.model.change, ui.seed.change, ui.psi.release, ui.noise.change, ui.vector_file.change, ui.vector_text.blur,
           ui.mix_seed.change, ui.mix_layers.change, ui.direction.change, ui.strength.release],
          generate, render_inputs, [ui.image, ui.message], api_name="generate", trigger_mode="always_last",
          concurrency_id="render", concurrency_limit=2, show_progress="minimal")
    ui.dice.click(lambda: random.randint(0, MAX_SEED), None, ui.seed, api_name=False)
    gr.on([ui.grid_btn.click, ui.model.change], seed_grid, [ui.model, ui.grid_start, ui.psi, ui.noise],  # first look
          [ui.grid, ui.message], api_name="seed_grid", concurrency_id="render")
    ui.grid.select(take_seed, ui.grid_start, ui.seed, api_name=False)
    ui.interp_btn.click(interpolation_video, [ui.model, ui.interp_seeds, ui.interp_seconds, ui.psi],
                        [ui.interp_video, ui.message], api_name="interpolation_video", concurrency_id="render")
    ui.empty_btn.click(lambda: go_to(MODELS), None, nav.tabs, api_name=False)
