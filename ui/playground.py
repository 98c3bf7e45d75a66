"""Playground tab: pick a model and where the latent comes from (a seed, a pasted vector, a saved
vector, your projected photo), then ψ, noise, style mixing and direction sliders; the image follows
the inputs, and "Keep" saves the latent as a named vector. Sections below: your photo in the model
(``playground_photo``), keyframe walks (``playground_walks``), the vector library and upscaling
(``playground_library``), and a seed grid to browse.

Every number box acts like its slider: typing a value and pressing Enter renders it."""
from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr

from core import playground as pg_core
from core.playground import view as view_core

from .common import MODELS, Nav, error_text, go_to, ok_text, safe, user_of
from .playground_library import LibraryUI, build_library, wire_library
from .playground_photo import PhotoUI, build_photo, wire_photo
from .playground_walks import WalksUI, build_walks, wire_walks

ERRORS = (pg_core.PlaygroundError,)
GRID_SEEDS = 16
MAX_SEED = 2**32 - 1
SLOTS = view_core.SLOTS
# Enter in a number box of this tab leaves the box: a slider then fires 'release', as when dragged.
ENTER_JS = """() => { document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && e.target.matches('#atelier-pg input[type=number]')) { e.target.blur(); }
}, true); }"""


@dataclass
class PlaygroundUI:
    tab: gr.Tab
    model: gr.Dropdown
    source: gr.Dropdown
    seed: gr.Number
    dice: gr.Button
    vector_text: gr.Textbox
    vector_file: gr.File
    psi: gr.Slider
    noise: gr.Radio
    mix_seed: gr.Number
    mix_layers: gr.Radio
    direction_set: gr.Dropdown
    sliders: list
    slot: gr.Dropdown
    slot_name: gr.Textbox
    save_dir_btn: gr.Button
    delete_dir_btn: gr.Button
    keep_name: gr.Textbox
    keep_btn: gr.Button
    image: gr.Image
    message: gr.Markdown
    grid_start: gr.Number
    grid_btn: gr.Button
    grid: gr.Gallery
    grid_seeds: gr.State
    empty_btn: gr.Button
    photo: PhotoUI
    walks: WalksUI
    library: LibraryUI

    def view_inputs(self) -> list:
        return [self.model, self.source, self.seed, self.vector_text, self.vector_file, self.psi, self.noise,
                self.mix_seed, self.mix_layers, self.direction_set, *self.sliders]


def _build_directions():
    direction_set = gr.Dropdown([("SeFa · all layers", "sefa:all")], value="sefa:all", label="Direction set",
                                allow_custom_value=True,
                                info="SeFa: from the model's weights; GANSpace: main axes of its W; or yours")
    sliders = [gr.Slider(-10, 10, value=0, step=0.5, label=f"SeFa {i + 1}", elem_id=f"atelier-pg-dir{i}")
               for i in range(SLOTS)]
    with gr.Row():
        slot = gr.Dropdown([(f"Slider {i + 1}", str(i)) for i in range(SLOTS)], value="0", label="Name a slider",
                           scale=1)
        slot_name = gr.Textbox(label="Its name", placeholder="e.g. petal size", scale=2)
    with gr.Row():
        save_dir_btn = gr.Button("Save it with this model", size="sm")
        delete_dir_btn = gr.Button("Delete this saved direction", size="sm", variant="stop", visible=False)
    return direction_set, sliders, slot, slot_name, save_dir_btn, delete_dir_btn


def build_playground() -> PlaygroundUI:
    with gr.Tab("5 · Playground", id="playground") as tab, gr.Column(elem_id="atelier-pg"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                model = gr.Dropdown(label="Model", choices=[], allow_custom_value=True, elem_id="atelier-pg-model")
                empty_btn = gr.Button("Your trained models are in My Models →", size="sm", variant="secondary")
                source = gr.Dropdown([("Seed (or the pasted vector)", "seed")], value="seed", label="Start from",
                                     allow_custom_value=True,
                                     elem_id="atelier-pg-source")
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed", scale=3,
                                     elem_id="atelier-seed")
                    dice = gr.Button("⚄ Random seed", scale=1, min_width=90)
                with gr.Accordion("Or paste / upload a vector (.npy: z or w)", open=False):
                    vector_text = gr.Textbox(label="Vector", lines=3, placeholder="0.12, -1.3, 0.8, …")
                    vector_file = gr.File(label=".npy file", file_types=[".npy"], height=90)
                psi = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation ψ (lower: more typical)",
                                elem_id="atelier-pg-psi")
                noise = gr.Radio([("Constant", "const"), ("Random", "random"), ("None", "none")], value="const",
                                 label="Noise")
                with gr.Accordion("Style mixing", open=False):
                    with gr.Row():
                        mix_seed = gr.Number(value=None, precision=0, minimum=0, label="Mix in seed (empty: off)")
                        mix_layers = gr.Radio([("Coarse: pose, shape", "0-4"), ("Middle: features", "4-8")],
                                              value="0-4", label="Take from it")
                with gr.Row():
                    keep_name = gr.Textbox(label="Keep this latent as a vector named", scale=3,
                                           elem_id="atelier-pg-keep-name")
                    keep_btn = gr.Button("Keep", scale=1, min_width=80, variant="primary")
                message = gr.Markdown(elem_classes=["atelier-msg"], elem_id="atelier-pg-msg")
                library = build_library()
            with gr.Column(scale=3):
                image = gr.Image(label="Output", height=512, interactive=False, format="png",
                                 buttons=["download", "fullscreen"], elem_id="atelier-pg-image")
                with gr.Accordion("Directions: move along what the model learnt", open=True):
                    direction_set, sliders, slot, slot_name, save_dir_btn, delete_dir_btn = _build_directions()
        photo = build_photo()
        walks = build_walks()
        with gr.Accordion("Browse seeds", open=True):
            with gr.Row():
                grid_start = gr.Number(value=0, precision=0, minimum=0, label="First seed", scale=1)
                grid_btn = gr.Button(f"Show {GRID_SEEDS} seeds", scale=1)
            grid = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel"], label="Click an image to take its seed",
                              columns=8, height=300, allow_preview=False, object_fit="contain")
            grid_seeds = gr.State([])   # the seeds of the grid, in the order drawn
    return PlaygroundUI(**{k: v for k, v in locals().items() if k in PlaygroundUI.__dataclass_fields__})


def view_of(model, source, seed, vector_text, vector_file, psi, noise, mix_seed, mix_layers, direction_set,
            *strengths) -> view_core.View:
    return view_core.View(model=model, source=source or "seed", seed=int(seed or 0), vector_text=vector_text or "",
                          vector_file=vector_file, psi=float(psi), noise_mode=noise, mix_seed=mix_seed,
                          mix_layers=mix_layers, direction_set=direction_set or "sefa:all",
                          strengths=tuple(float(s or 0) for s in strengths))


def wire_playground(ui: PlaygroundUI, nav: Nav) -> None:
    @safe(ui.message, ERRORS)
    def list_models(current, request: gr.Request):
        choices = pg_core.model_choices(user_of(request))
        keys = [v for _, v in choices]
        value = current if current in keys else (keys[0] if keys else None)
        note = "" if keys else "⚠ No model available yet: train one, or add the bundled default model."
        return {ui.model: gr.Dropdown(choices=choices, value=value), ui.message: note}

    def open_requested(asked, request: gr.Request):  # another tab asked for this model (nav.open_model)
        return list_models(asked.get("key") if isinstance(asked, dict) else None, request)

    @safe(ui.message, ERRORS)
    def model_options(model, source, direction_set, request: gr.Request):
        sources = view_core.source_choices(user_of(request), model)
        sets = view_core.direction_set_choices(user_of(request), model)
        keep = lambda v, cs: v if v in [c for _, c in cs] else cs[0][1]  # noqa: E731
        return {ui.source: gr.Dropdown(choices=sources, value=keep(source, sources)),
                ui.direction_set: gr.Dropdown(choices=sets, value=keep(direction_set, sets))}

    @safe(ui.message, ERRORS)
    def direction_sliders(model, direction_set, request: gr.Request):
        names = view_core.slot_names(user_of(request), model, direction_set)
        saved = direction_set == "saved"
        note = {ui.message: "No directions saved with this model yet: name a slider."} if saved and not names else {}
        return {**{s: gr.Slider(value=0, label=names[i] if i < len(names) else "—", visible=i < len(names))
                   for i, s in enumerate(ui.sliders)}, **note, ui.delete_dir_btn: gr.Button(visible=saved),
                ui.save_dir_btn: gr.Button("Rename it" if saved else "Save it with this model")}

    @safe(ui.message, ERRORS)
    def generate(model, source, seed, vector_text, vector_file, psi, noise, mix_seed, mix_layers, direction_set,
                 s1, s2, s3, s4, s5, s6, request: gr.Request):
        view = view_of(model, source, seed, vector_text, vector_file, psi, noise, mix_seed, mix_layers,
                       direction_set, s1, s2, s3, s4, s5, s6)
        out = view_core.render_view(user_of(request), view)
        return {ui.message: error_text(out["error"])} if out["error"] else {ui.image: out["image"], ui.message: ""}

    @safe(ui.message, ERRORS)
    def keep_vector(model, source, seed, vector_text, vector_file, psi, noise, mix_seed, mix_layers, direction_set,
                    s1, s2, s3, s4, s5, s6, name, request: gr.Request):
        view = view_of(model, source, seed, vector_text, vector_file, psi, noise, mix_seed, mix_layers,
                       direction_set, s1, s2, s3, s4, s5, s6)
        _, said = view_core.keep_view(user_of(request), view, name)
        return {ui.message: ok_text(said), ui.keep_name: ""}

    @safe(ui.message, ERRORS)
    def save_direction(model, direction_set, slot, name, request: gr.Request):
        rec = view_core.save_slot(user_of(request), model, direction_set, int(slot or 0), name)
        return {ui.message: ok_text(f"Saved “{rec['name']}” with this model: pick “Saved with this model”."),
                ui.slot_name: ""}

    @safe(ui.message, ERRORS)
    def delete_direction(model, slot, request: gr.Request):
        rec = view_core.delete_slot(user_of(request), model, int(slot or 0))
        return {ui.message: ok_text(f"Deleted the direction “{rec['name']}”."), ui.direction_set: "sefa:all"}

    @safe(ui.message, ERRORS)
    def seed_grid(model, start, psi, noise, request: gr.Request):
        cells, seeds = view_core.seed_cells(user_of(request), model, start, GRID_SEEDS, float(psi), noise)
        return {ui.grid: cells, ui.grid_seeds: seeds, ui.message: ""}

    def take_seed(seeds, evt: gr.SelectData):  # the seed drawn in the cell clicked, never one read again
        ok = isinstance(seeds, list) and isinstance(evt.index, int) and 0 <= evt.index < len(seeds)
        return (seeds[evt.index], "seed") if ok else (gr.skip(), gr.skip())

    inputs = ui.view_inputs()
    gr.on([ui.tab.select, nav.demo.load], list_models, ui.model, [ui.model, ui.message],
          api_name="playground_models", show_progress="hidden")
    nav.open_model.change(open_requested, nav.open_model, [ui.model, ui.message], api_name=False,
                          show_progress="hidden")
    gr.on([ui.model.change, ui.source.focus], model_options, [ui.model, ui.source, ui.direction_set],
          [ui.source, ui.direction_set, ui.message], api_name="playground_options", show_progress="hidden")
    render = dict(trigger_mode="always_last", concurrency_id="render", concurrency_limit=2, show_progress="minimal")
    slider_outputs = [*ui.sliders, ui.message, ui.delete_dir_btn, ui.save_dir_btn]
    # A new model or direction set first resets the sliders to 0, then renders (not before: stale strengths).
    gr.on([ui.model.change, ui.direction_set.change], direction_sliders, [ui.model, ui.direction_set], slider_outputs,
          api_name="direction_sliders", show_progress="hidden").then(
        generate, inputs, [ui.image, ui.message], api_name=False, **render)
    gr.on([ui.source.change, ui.seed.change, ui.psi.release, ui.noise.change, ui.vector_file.change,
           ui.vector_text.blur, ui.mix_seed.change, ui.mix_layers.change, *[s.release for s in ui.sliders]],
          generate, inputs, [ui.image, ui.message], api_name="generate", **render)
    gr.on([ui.keep_btn.click, ui.keep_name.submit], keep_vector, [*inputs, ui.keep_name], [ui.message, ui.keep_name],
          api_name="keep_vector")
    ui.save_dir_btn.click(save_direction, [ui.model, ui.direction_set, ui.slot, ui.slot_name],
                          [ui.message, ui.slot_name], api_name="save_direction").then(
        direction_sliders, [ui.model, ui.direction_set], slider_outputs, api_name=False, show_progress="hidden").then(
        generate, inputs, [ui.image, ui.message], api_name=False, **render)
    ui.delete_dir_btn.click(delete_direction, [ui.model, ui.slot], [ui.message, ui.direction_set],
                            api_name="delete_direction")
    ui.dice.click(lambda: (random.randint(0, MAX_SEED), "seed"), None, [ui.seed, ui.source], api_name=False)
    # the model's change also fills the grid: the first look at a model
    gr.on([ui.grid_btn.click, ui.grid_start.submit, ui.model.change], seed_grid, [ui.model, ui.grid_start, ui.psi, ui.noise],
          [ui.grid, ui.grid_seeds, ui.message], api_name="seed_grid", concurrency_id="render")
    ui.grid.select(take_seed, ui.grid_seeds, [ui.seed, ui.source], api_name=False)
    ui.empty_btn.click(lambda: go_to(MODELS), None, nav.tabs, api_name=False)
    nav.demo.load(None, None, None, js=ENTER_JS, api_name=False)
    wire_photo(ui.photo, ui, nav)
    wire_walks(ui.walks, ui)
    wire_library(ui.library, ui)
