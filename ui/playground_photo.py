"""Playground · your photo in the model: upload (or pick a dataset image), crop, project in the
background with live progress and a stop button; the result becomes what the Playground starts from."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core import datasets as ds_core
from core import playground as pg_core
from core.playground import view as view_core

from .common import Nav, error_text, ok_text, safe, served, user_of

ERRORS = (pg_core.PlaygroundError, ds_core.DatasetError)
POLL_S = 1.0
LOSS_CHOICES = [("Pixels + SSIM (best measured)", "pixel+ssim"), ("Pixels, multi-scale", "pixel"),
                ("Pixels + the model's discriminator features", "d+pixel"),
                ("Pixels + LPIPS (your VGG16 weights)", "lpips+pixel")]


@dataclass
class PhotoUI:
    accordion: gr.Accordion
    pick: gr.Accordion
    photo: gr.Image
    crop_view: gr.Image
    dataset: gr.Dropdown
    dataset_photos: gr.Gallery
    crop: gr.Radio
    zoom: gr.Slider
    cx: gr.Slider
    cy: gr.Slider
    space: gr.Radio
    fit_noise: gr.Checkbox
    steps: gr.Slider
    loss: gr.Dropdown
    lpips: gr.File
    project_btn: gr.Button
    stop_btn: gr.Button
    progress: gr.Image
    status: gr.Markdown
    timer: gr.Timer


def build_photo() -> PhotoUI:
    with gr.Accordion("Your photo in the model: find it, then edit it", open=False,
                      elem_id="atelier-pg-photo-section") as accordion:
        with gr.Row(equal_height=False):
            photo = gr.Image(label="Your photo", type="filepath", sources=["upload"], height=240,
                             elem_id="atelier-pg-photo")
            crop_view = gr.Image(label="What the model will try to draw", interactive=False, height=240,
                                 elem_classes=["atelier-pixel"], elem_id="atelier-pg-crop")
            progress = gr.Image(label="Your photo | the model's closest drawing", interactive=False, height=240,
                                elem_classes=["atelier-pixel"], elem_id="atelier-pg-progress")
        with gr.Accordion("Or pick a photo from one of your datasets", open=False) as pick:
            dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True)
            dataset_photos = gr.Gallery(label="Click a photo to use it", columns=8, height=200, allow_preview=False,
                                        object_fit="contain")
        with gr.Row():
            crop = gr.Radio([("Square (zoom and move below)", "center"), ("Whole photo, squeezed", "none"),
                             ("Whole photo, padded", "pad")], value="center", label="Crop")
            zoom = gr.Slider(1, 4, value=1, step=0.1, label="Zoom")
            cx = gr.Slider(0, 1, value=0.5, step=0.01, label="Centre, across")
            cy = gr.Slider(0, 1, value=0.5, step=0.01, label="Centre, down")
        with gr.Row():
            space = gr.Radio([("W+: closest (one w per layer)", "w+"), ("W: most editable (one w)", "w")],
                             value="w+", label="Search in")
            fit_noise = gr.Checkbox(value=False, label="Also fit the noise maps")
            steps = gr.Slider(20, 2000, value=300, step=10, label="Steps", elem_id="atelier-pg-steps")
            loss = gr.Dropdown(LOSS_CHOICES, value="pixel+ssim", label="Likeness measured by")
        lpips = gr.File(label="VGG16 / LPIPS weights (.safetensors or .pth; only for LPIPS)", file_count="multiple",
                        file_types=[".safetensors", ".pth", ".pt"], height=80)
        with gr.Row():
            project_btn = gr.Button("Find my photo in the model", variant="primary")
            stop_btn = gr.Button("Stop", variant="stop", interactive=False)
        status = gr.Markdown(elem_classes=["atelier-msg"], elem_id="atelier-pg-photo-status")
        timer = gr.Timer(POLL_S, active=False)
    return PhotoUI(**{k: v for k, v in locals().items() if k in PhotoUI.__dataclass_fields__})


def wire_photo(ui: PhotoUI, pg, nav: Nav) -> None:
    @safe(ui.status, ERRORS)
    def crop_photo(model, photo, crop, zoom, cx, cy, request: gr.Request):
        if not photo:
            return {ui.crop_view: None, ui.status: ""}
        return {ui.crop_view: view_core.crop_for_model(user_of(request), model, photo, crop, zoom, cx, cy),
                ui.status: ""}

    @safe(ui.status, ERRORS)
    def photo_datasets(request: gr.Request):
        found = ds_core.list_datasets(user_of(request))
        return {ui.dataset: gr.Dropdown(choices=[(d["name"], d["id"]) for d in found]),
                ui.status: "" if found else "No datasets yet: upload a photo instead."}

    @safe(ui.status, ERRORS)
    def dataset_photos(dataset, request: gr.Request):
        found = ds_core.dataset_images(dataset, user_of(request), limit=48) if dataset else []
        return {ui.dataset_photos: [(served(path), name) for name, path in found], ui.status: ""}

    def use_photo(evt: gr.SelectData):
        return evt.value["image"]["path"]

    @safe(ui.status, ERRORS)
    def start_projection(model, photo, crop, zoom, cx, cy, space, fit_noise, steps, loss, lpips,
                         request: gr.Request):
        options = pg_core.ProjectionOptions(space=space, noise=bool(fit_noise), steps=int(steps), loss=loss,
                                            lpips_weights=tuple(lpips or ()))
        view_core.project_photo(user_of(request), model, photo, options, crop, zoom, cx, cy)
        return {ui.status: "Starting…", ui.timer: gr.Timer(active=True), ui.project_btn: gr.Button(interactive=False),
                ui.stop_btn: gr.Button(interactive=True)}

    @safe(ui.status, ERRORS)
    def projection_status(model, request: gr.Request):
        try:
            s = view_core.photo_status(user_of(request), model)
        except pg_core.PlaygroundError as e:
            return {ui.status: error_text(str(e)), ui.timer: gr.Timer(active=False)}
        out = {ui.progress: s["image"], ui.status: (ok_text if s["state"] == "done" else str)(s["text"])}
        if not s["active"]:
            out.update({ui.timer: gr.Timer(active=False), ui.project_btn: gr.Button(interactive=True),
                        ui.stop_btn: gr.Button(interactive=False)})
            if s.get("source"):
                out.update({pg.source: gr.Dropdown(choices=s["sources"], value=s["source"]), pg.psi: 1.0})
        return out

    def resume(request: gr.Request):
        """After a reload: follow a projection that is still running."""
        found = pg_core.PROJECTIONS.list(user_of(request))
        running = bool(found) and found[-1]["state"] in ("waiting", "running")
        return {ui.timer: gr.Timer(active=running), ui.project_btn: gr.Button(interactive=not running),
                ui.stop_btn: gr.Button(interactive=running)}

    @safe(ui.status, ERRORS)
    def stop_projection(request: gr.Request):
        pg_core.PROJECTIONS.stop(user_of(request))
        return {ui.status: "Stopping after this step; the closest drawing so far is kept."}

    crop_inputs = [pg.model, ui.photo, ui.crop, ui.zoom, ui.cx, ui.cy]
    gr.on([ui.photo.change, ui.crop.change, ui.zoom.release, ui.cx.release, ui.cy.release], crop_photo, crop_inputs,
          [ui.crop_view, ui.status], api_name="crop_photo", trigger_mode="always_last", show_progress="hidden")
    ui.pick.expand(photo_datasets, None, [ui.dataset, ui.status], api_name="photo_datasets")
    ui.dataset.change(dataset_photos, ui.dataset, [ui.dataset_photos, ui.status], api_name="dataset_photos")
    ui.dataset_photos.select(use_photo, None, ui.photo, api_name=False)
    ui.project_btn.click(start_projection, [*crop_inputs, ui.space, ui.fit_noise, ui.steps, ui.loss, ui.lpips],
                         [ui.status, ui.timer, ui.project_btn, ui.stop_btn], api_name="start_projection")
    ui.timer.tick(projection_status, pg.model,
                  [ui.progress, ui.status, ui.timer, ui.project_btn, ui.stop_btn, pg.source, pg.psi],
                  api_name="projection_status", show_progress="hidden")
    ui.stop_btn.click(stop_projection, None, ui.status, api_name="stop_projection")
    nav.demo.load(resume, None, [ui.timer, ui.project_btn, ui.stop_btn], api_name=False, show_progress="hidden")
