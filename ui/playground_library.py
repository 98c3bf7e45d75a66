"""Playground · your vectors (use, rename, delete, export / import .npy) and upscaling the output
(x2 / x4, Lanczos or a super-resolution network whose weights you supply)."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core import playground as pg_core
from core.playground import library as library_core
from core.playground import view as view_core

from .common import ok_text, safe, scratch_dir, user_of

ERRORS = (pg_core.PlaygroundError,)


@dataclass
class LibraryUI:
    vectors: gr.Dropdown
    use_btn: gr.Button
    new_name: gr.Textbox
    rename_btn: gr.Button
    delete_btn: gr.Button
    export_btn: gr.Button
    export_file: gr.File
    import_file: gr.File
    import_name: gr.Textbox
    import_space: gr.Radio
    import_btn: gr.Button
    factor: gr.Radio
    sr_weights: gr.File
    upscale_btn: gr.Button
    upscaled: gr.Image
    message: gr.Markdown


def build_library() -> LibraryUI:
    with gr.Accordion("Your vectors", open=False, elem_id="atelier-pg-library"):
        with gr.Row():
            vectors = gr.Dropdown(label="Vectors of this model", choices=[], scale=3, allow_custom_value=True,
                                  elem_id="atelier-pg-vectors")
            use_btn = gr.Button("Start from it", scale=1)
        with gr.Row():
            new_name = gr.Textbox(label="New name", scale=3)
            rename_btn = gr.Button("Rename", scale=1)
            delete_btn = gr.Button("Delete", variant="stop", scale=1)
            export_btn = gr.Button("Export .npy", scale=1)
        export_file = gr.File(label="Exported vector", interactive=False, height=70)
        with gr.Row():
            import_file = gr.File(label="Import a .npy", file_types=[".npy"], height=90, scale=2)
            with gr.Column(scale=2):
                import_name = gr.Textbox(label="Its name")
                import_space = gr.Radio([("By its shape", "auto"), ("z", "z"), ("w", "w")], value="auto", label="Holds")
            import_btn = gr.Button("Import", scale=1)
    with gr.Accordion("Upscale the output", open=False, elem_id="atelier-pg-upscale"):
        with gr.Row():
            factor = gr.Radio([("x2", "2"), ("x4", "4")], value="2", label="Factor")
            sr_weights = gr.File(label="Super-resolution weights (optional: RRDBNet / Real-ESRGAN, .safetensors or .pth)",
                                 file_types=[".safetensors", ".pth", ".pt"], height=80)
            upscale_btn = gr.Button("Upscale")
        upscaled = gr.Image(label="Upscaled", interactive=False, format="png", buttons=["download", "fullscreen"],
                            elem_id="atelier-pg-upscaled")
    message = gr.Markdown(elem_classes=["atelier-msg"], elem_id="atelier-pg-library-msg")
    return LibraryUI(**{k: v for k, v in locals().items() if k in LibraryUI.__dataclass_fields__})


def wire_library(ui: LibraryUI, pg) -> None:
    @safe(ui.message, ERRORS)
    def list_vectors(model, current, request: gr.Request):
        choices = view_core.vector_choices(user_of(request), model)
        ids = [v for _, v in choices]
        return {ui.vectors: gr.Dropdown(choices=choices, value=current if current in ids else (ids[0] if ids else None))}

    @safe(ui.message, ERRORS)
    def use_vector(model, vector, request: gr.Request):
        choices = view_core.source_choices(user_of(request), model)
        return {pg.source: gr.Dropdown(choices=choices, value=f"vector:{vector}"), ui.message: ""}

    @safe(ui.message, ERRORS)
    def rename_vector(vector, name, request: gr.Request):
        rec = library_core.rename(user_of(request), "vectors", vector, name)
        return {ui.message: ok_text(f"Renamed to “{rec['name']}”."), ui.new_name: ""}

    @safe(ui.message, ERRORS)
    def delete_vector(vector, request: gr.Request):
        rec = library_core.delete(user_of(request), "vectors", vector)
        return {ui.message: ok_text(f"Deleted the vector “{rec['name']}”."), ui.vectors: None}

    @safe(ui.message, ERRORS)
    def export_vector(vector, request: gr.Request):
        path = library_core.export_vector(user_of(request), vector, scratch_dir())
        return {ui.export_file: str(path), ui.message: ok_text(f"{path.name}: the latent only (noise maps stay here).")}

    @safe(ui.message, ERRORS)
    def import_vector(model, file, name, space, request: gr.Request):
        rec = view_core.import_vector(user_of(request), model, file, name, space)
        return {ui.message: ok_text(f"Imported “{rec['name']}” ({rec['space']})."), ui.import_name: ""}

    @safe(ui.message, ERRORS)
    def upscale_output(image, factor, weights, request: gr.Request):
        if image is None:
            return {ui.message: "⚠ Render an image first."}
        return {ui.upscaled: pg_core.upscale(image, int(factor), weights=weights), ui.message: ""}

    changed = [ui.vectors, ui.message]
    gr.on([pg.model.change, ui.vectors.focus], list_vectors, [pg.model, ui.vectors], changed, api_name="list_vectors",
          show_progress="hidden")
    ui.use_btn.click(use_vector, [pg.model, ui.vectors], [pg.source, ui.message], api_name="use_vector")
    gr.on([ui.rename_btn.click, ui.new_name.submit], rename_vector, [ui.vectors, ui.new_name], [ui.message, ui.new_name],
          api_name="rename_vector").then(list_vectors, [pg.model, ui.vectors], changed, api_name=False)
    ui.delete_btn.click(delete_vector, ui.vectors, [ui.message, ui.vectors], api_name="delete_vector").then(
        list_vectors, [pg.model, ui.vectors], changed, api_name=False)
    ui.export_btn.click(export_vector, ui.vectors, [ui.export_file, ui.message], api_name="export_vector")
    ui.import_btn.click(import_vector, [pg.model, ui.import_file, ui.import_name, ui.import_space],
                        [ui.message, ui.import_name], api_name="import_vector").then(
        list_vectors, [pg.model, ui.vectors], changed, api_name=False)
    ui.upscale_btn.click(upscale_output, [pg.image, ui.factor, ui.sr_weights], [ui.upscaled, ui.message],
                         api_name="upscale_output", concurrency_id="render")
