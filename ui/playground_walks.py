"""Playground · keyframe walks: seeds, saved vectors and projected photos in order, in Z or W, with
easing and a loop; preview a few frames, then render the mp4; or a random noise loop."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core import playground as pg_core
from core import video as video_core
from core.playground import view as view_core

from .common import ok_text, safe, scratch_dir, user_of

ERRORS = (pg_core.PlaygroundError, video_core.VideoError)
SIZES = [("The model's size", "0"), ("256 px", "256"), ("512 px", "512"), ("1024 px", "1024")]


@dataclass
class WalksUI:
    keyframes: gr.Dropdown
    interpolation: gr.Radio
    easing: gr.Radio
    loop: gr.Checkbox
    seconds: gr.Number
    fps: gr.Number
    size: gr.Dropdown
    preview_btn: gr.Button
    render_btn: gr.Button
    frames: gr.Gallery
    video: gr.Video
    loop_seed: gr.Number
    wander: gr.Slider
    loop_btn: gr.Button
    message: gr.Markdown


def build_walks() -> WalksUI:
    with gr.Accordion("Keyframe walk (video)", open=False, elem_id="atelier-pg-walk"):
        keyframes = gr.Dropdown(choices=[], value=["0", "1", "2", "3"], multiselect=True, allow_custom_value=True,
                                label="Keyframes, in order: type seeds, or pick saved vectors and projected photos",
                                elem_id="atelier-pg-keyframes")
        with gr.Row():
            interpolation = gr.Radio([("Z, spherical", "z-slerp"), ("W, straight", "w-lerp"), ("W, curved", "w-cubic")],
                                     value="w-lerp", label="Path")
            easing = gr.Radio([("Linear", "linear"), ("Smooth", "smooth"), ("Ease in", "ease-in"),
                               ("Ease out", "ease-out")], value="smooth", label="Each leg")
            loop = gr.Checkbox(value=True, label="Loop back to the first")
        with gr.Row():
            seconds = gr.Number(value=10, minimum=0.5, maximum=600, label="Length (s)")
            fps = gr.Number(value=24, minimum=1, maximum=60, precision=0, label="Frames per second")
            size = gr.Dropdown(SIZES, value="0", label="Video size")
            preview_btn = gr.Button("Preview frames")
            render_btn = gr.Button("Render the video", variant="primary")
        frames = gr.Gallery(label="Frames across the walk", columns=8, height=160, allow_preview=False,
                            object_fit="contain", elem_classes=["atelier-pixel"], elem_id="atelier-pg-frames")
        video = gr.Video(label="Walk", loop=True, autoplay=True, height=360, elem_id="atelier-pg-video")
        with gr.Row():
            loop_seed = gr.Number(value=0, precision=0, minimum=0, label="Noise loop seed")
            wander = gr.Slider(1, 4, value=1, step=1, label="Wander (1: a smooth circle)")
            loop_btn = gr.Button("Random noise loop")
        message = gr.Markdown(elem_classes=["atelier-msg"], elem_id="atelier-pg-walk-msg")
    return WalksUI(**{k: v for k, v in locals().items() if k in WalksUI.__dataclass_fields__})


def wire_walks(ui: WalksUI, pg) -> None:
    @safe(ui.message, ERRORS)
    def keyframe_choices(model, current, request: gr.Request):
        found = [c for c in view_core.source_choices(user_of(request), model) if c[1] != "seed"]
        return {ui.keyframes: gr.Dropdown(choices=found)}

    @safe(ui.message, ERRORS)
    def walk_preview(model, keyframes, interpolation, easing, loop, seconds, fps, psi, request: gr.Request):
        shots = view_core.walk_preview(user_of(request), model, keyframes, float(seconds or 0), float(fps or 0),
                                       interpolation, easing, loop, float(psi))
        return {ui.frames: [(img, caption) for caption, img in shots], ui.message: ""}

    @safe(ui.message, ERRORS)
    def walk_video(model, keyframes, interpolation, easing, loop, seconds, fps, size, psi, request: gr.Request,
                   progress=gr.Progress()):
        dest = view_core.walk_video(user_of(request), model, keyframes, scratch_dir() / "walk.mp4", float(seconds or 0),
                                    float(fps or 0), int(size or 0) or None, interpolation, easing, loop, float(psi),
                                    progress_fn=lambda d, t: progress((d, t), desc="Rendering frames"))
        return {ui.video: str(dest), ui.message: ok_text("Rendered." + (" It ends where it starts." if loop else ""))}

    @safe(ui.message, ERRORS)
    def noise_loop(model, seed, wander, seconds, fps, size, psi, request: gr.Request, progress=gr.Progress()):
        dest = view_core.noise_loop_video(user_of(request), model, scratch_dir() / "noise-loop.mp4", int(seed or 0),
                                          int(wander), float(seconds or 0), float(fps or 0), int(size or 0) or None,
                                          float(psi), progress_fn=lambda d, t: progress((d, t), desc="Rendering frames"))
        return {ui.video: str(dest), ui.message: ok_text("A random loop: it ends where it starts.")}

    walk = [pg.model, ui.keyframes, ui.interpolation, ui.easing, ui.loop, ui.seconds, ui.fps]
    gr.on([pg.model.change, ui.keyframes.focus], keyframe_choices, [pg.model, ui.keyframes], [ui.keyframes, ui.message],
          api_name="keyframe_choices", show_progress="hidden")
    gr.on([ui.preview_btn.click, ui.seconds.submit, ui.fps.submit], walk_preview, [*walk, pg.psi],
          [ui.frames, ui.message], api_name="walk_preview", concurrency_id="render")
    ui.render_btn.click(walk_video, [*walk, ui.size, pg.psi], [ui.video, ui.message], api_name="walk_video",
                        concurrency_id="render")
    gr.on([ui.loop_btn.click, ui.loop_seed.submit], noise_loop,
          [pg.model, ui.loop_seed, ui.wander, ui.seconds, ui.fps, ui.size, pg.psi], [ui.video, ui.message],
          api_name="noise_loop_video", concurrency_id="render")
