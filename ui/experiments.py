"""Experiments tab: every experiment with its state, and the live view of one: snapshot grids on a
step slider, save / export / save-to-models, loss and ADA plots, log, stop / continue / delete."""
from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from core import jobs as jobs_core
from core import models as models_core
from core import video as video_core
from core.stylegan.train_config import MAX_STEPS

from .common import (MODELS, NEW, Nav, download_name, duration, go_to, md_escape, ok_text, safe, scratch_dir, served,
                     user_of)

REFRESH_S = 2.0
LOSSES = ("loss_G", "loss_D", "r1")
LOSS_COLOURS = {"loss_G": "#f97316", "loss_D": "#3b82f6", "r1": "#10b981"}  # fixed: the series exist before data
ERRORS = (jobs_core.JobsError, models_core.ModelError, video_core.VideoError)


@dataclass
class ExperimentsUI:
    tab: gr.Tab
    timer: gr.Timer
    empty: gr.Group
    empty_btn: gr.Button
    table: gr.HTML
    chosen: gr.Dropdown
    list_message: gr.Markdown
    view: gr.Column
    header: gr.HTML
    grid: gr.Image
    snapshot: gr.Slider
    snapshot_md: gr.Markdown
    seen: gr.State
    save_sample: gr.DownloadButton
    export_btn: gr.Button
    video: gr.File
    model_name: gr.Textbox
    save_model_btn: gr.Button
    open_models: gr.Button
    message: gr.Markdown
    loss_plot: gr.LinePlot
    ada_plot: gr.LinePlot
    log: gr.Textbox
    stop_btn: gr.Button
    more_steps: gr.Number
    continue_btn: gr.Button
    delete_btn: gr.Button
    confirm: gr.Group
    confirm_md: gr.Markdown
    confirm_yes: gr.Button
    confirm_no: gr.Button


def build_experiments() -> ExperimentsUI:
    with gr.Tab("3 · Experiments", id="experiments") as tab:
        timer = gr.Timer(REFRESH_S, active=False)  # on only while this tab is shown
        with gr.Group(visible=False, elem_classes=["atelier-empty"]) as empty:
            gr.Markdown("**No experiments yet.** Pick a dataset and a pre-trained model, then start training.")
            empty_btn = gr.Button("New experiment", variant="primary")
        table = gr.HTML(elem_classes=["atelier-exps"])
        chosen = gr.Dropdown(label="Open experiment", choices=[], allow_custom_value=True, elem_id="atelier-exp-pick")
        list_message = gr.Markdown(elem_classes=["atelier-msg"])
        seen = gr.State({})
        with gr.Column(visible=False) as view:
            header = gr.HTML(elem_classes=["atelier-header"])
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    grid = gr.Image(label="Fixed-seed samples", height=520, interactive=False, format="png",
                                    elem_id="atelier-grid")
                    snapshot = gr.Slider(0, 25_000, value=0, step=1, label="Step (drag to scrub through the snapshots)",
                                         elem_id="atelier-snapshot")
                    snapshot_md = gr.Markdown()
                with gr.Column(scale=2):
                    save_sample = gr.DownloadButton("Save this sample (PNG)", value=None)
                    export_btn = gr.Button("Export progress video (mp4)")
                    video = gr.File(label="Progress video", visible=False, elem_id="atelier-video")
                    model_name = gr.Textbox(label="Name for My Models", placeholder="e.g. Ink v1", max_length=80)
                    save_model_btn = gr.Button("Save this snapshot to My Models", variant="primary")
                    open_models = gr.Button("Open My Models →", visible=False)
                    message = gr.Markdown(elem_classes=["atelier-msg"])
            with gr.Row():
                loss_plot = gr.LinePlot(plots_view([])[0], x="step", y="value", color="series", title="Losses and R1",
                                       color_map=LOSS_COLOURS, height=220)
                ada_plot = gr.LinePlot(plots_view([])[1], x="step", y="value", color="series", title="ADA p (augmentation strength)",
                                       color_map={"ada_p": "#8b5cf6"},
                                       height=220)
            log = gr.Textbox(label="Log (newest last)", lines=6, max_lines=12, interactive=False, autoscroll=True)
            with gr.Row(equal_height=False, elem_classes=["atelier-run-controls"]):
                stop_btn = gr.Button("Stop", variant="stop", visible=False, size="md", scale=0, min_width=120)
                more_steps = gr.Number(label="Continue to (total steps)", precision=0, visible=False,
                                       elem_id="atelier-continue-to", scale=2)
                continue_btn = gr.Button("Continue", visible=False, size="md", scale=0, min_width=120)
                delete_btn = gr.Button("Delete…", variant="secondary", size="md", scale=0, min_width=120)
            with gr.Group(visible=False) as confirm:
                confirm_md = gr.Markdown()
                with gr.Row():
                    confirm_yes = gr.Button("Yes, delete it", variant="stop")
                    confirm_no = gr.Button("Cancel")
    return ExperimentsUI(**{k: v for k, v in locals().items() if k in ExperimentsUI.__dataclass_fields__})


# ---- views -------------------------------------------------------------------------------------

def badge(e: dict) -> str:
    s = e["state"]
    if s == "queued":
        return f"queued #{e['queue_position']}" if e.get("queue_position") else "queued"
    if s == "training":
        left = f" · about {duration(e['eta_seconds'])} left" if e.get("eta_seconds") is not None else ""
        return f"training {e['progress']:.0%}{left}"
    return s


def table_view(items: list[dict]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(e['title'])}</td><td><span class='atelier-badge'>{html.escape(badge(e))}</span></td>"
        f"<td class='bar'><div class='atelier-bar' role='progressbar' aria-valuenow='{e['progress'] * 100:.0f}' "
        f"aria-valuemin='0' aria-valuemax='100'><span style='width:{e['progress'] * 100:.1f}%'></span></div></td>"
        f"<td>{e['step']:,} / {e['steps']:,} steps</td><td>{html.escape(e.get('dataset_name') or '')}</td></tr>"
        for e in items)
    return f"<table><tr><th>Title</th><th>State</th><th>Progress</th><th>Steps</th><th>Dataset</th></tr>{rows}</table>"


def header_view(e: dict) -> str:
    error = f"<p>⚠ {html.escape(e['error'])}</p>" if e.get("error") else ""
    return (f"<h3>{html.escape(e['title'])} <span class='atelier-badge'>{html.escape(badge(e))}</span></h3>"
            f"<div class='atelier-bar'><span style='width:{e['progress'] * 100:.1f}%'></span></div>"
            f"<p>{e['step']:,} of {e['steps']:,} steps · from {html.escape(e['checkpoint'])} on "
            f"{html.escape(e.get('dataset_name') or '')}</p>{error}")


def plots_view(stats: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    def long(keys):
        rows = [{"step": s["step"], "value": float(s[k]), "series": k} for s in stats for k in keys
                if s.get(k) is not None]
        df = pd.DataFrame(rows, columns=["step", "value", "series"])
        return df.astype({"step": "int64", "value": "float64", "series": "object"})
    return long(LOSSES), long(("ada_p",))


def snapshot_text(snap: dict | None, total: int) -> str:
    if not snap:
        return "No snapshot yet: the first one appears after the first few steps."
    saved = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(snap["wall_time"]))
    return f"Step **{snap['step']:,}** · saved {saved} · {total} snapshot{'s' if total != 1 else ''} in all"


def slider_step(snaps: list[dict]) -> int:
    return math.gcd(*[s["step"] for s in snaps]) or 1 if snaps else 1


def continue_target(e: dict) -> tuple[int, str]:
    """The default 'Continue to': the planned total when stopped before it, else twice the steps (said so)."""
    if e["step"] < e["steps"]:
        return e["steps"], f"Default: the {e['steps']:,} steps planned ({e['steps'] - e['step']:,} more)."
    target = min(2 * e["steps"], MAX_STEPS)
    return target, f"Default: twice as long ({target - e['step']:,} more steps); type any total up to {MAX_STEPS:,}."


def controls_view(ui: ExperimentsUI, e: dict) -> dict:
    """Stop while it is queued or running; Continue (with a default total that says what it is) after."""
    active = e["state"] in jobs_core.ACTIVE
    can_continue = not active and e["step"] < MAX_STEPS
    target, why = continue_target(e)
    return {ui.stop_btn: gr.Button("Stopping…" if e["state"] == "stopping" else "Stop", visible=active,
                                   interactive=e["state"] != "stopping"),
            ui.more_steps: gr.Number(value=target, info=why, visible=can_continue),
            ui.continue_btn: gr.Button(visible=can_continue)}


def snapshot_outputs(ui: ExperimentsUI, e: dict, snaps: list[dict], step: int) -> dict:
    snap = jobs_core.nearest_snapshot(snaps, step)
    name = download_name(e["title"], f"step {snap['step']}", ext="png") if snap else None
    return {ui.grid: served(snap["image_path"]) if snap else None, ui.snapshot_md: snapshot_text(snap, len(snaps)),
            ui.save_sample: gr.DownloadButton(value=served(snap["image_path"], name) if snap else None)}


def experiment_view(ui: ExperimentsUI, exp_id: str, user: str, step: int | None, seen: dict) -> dict:
    """Everything the view shows; ``step`` None (or the newest) follows the newest snapshot.
    Parts that did not change since ``seen`` are left out, so a timer never moves a held slider."""
    e = jobs_core.get_experiment(exp_id, user)
    snaps = jobs_core.experiment_snapshots(exp_id, user)
    last = snaps[-1]["step"] if snaps else 0
    following = step is None or seen.get("id") != exp_id or step >= seen.get("last", 0)
    out = {ui.view: gr.Column(visible=True), ui.header: header_view(e)}
    if seen.get("id") != exp_id or seen.get("snaps") != len(snaps):
        out[ui.snapshot] = gr.Slider(minimum=0, maximum=max(last, 1), step=slider_step(snaps),
                                     interactive=len(snaps) > 1, **({"value": last} if following else {}))
        if following:
            out.update(snapshot_outputs(ui, e, snaps, last))
    stats = jobs_core.experiment_stats(exp_id, user)
    if seen.get("id") != exp_id or seen.get("stats") != len(stats):
        out[ui.loss_plot], out[ui.ada_plot] = plots_view(stats)
        out[ui.log] = "\n".join(jobs_core.experiment_log(exp_id, user, tail=40))
    if seen.get("id") != exp_id or seen.get("state") != e["state"]:
        out.update(controls_view(ui, e))
    out[ui.seen] = {"id": exp_id, "snaps": len(snaps), "stats": len(stats), "last": last, "state": e["state"]}
    return out


def list_outputs(ui: ExperimentsUI, items: list[dict], chosen: str | None) -> dict:
    ids = [e["id"] for e in items]
    value = chosen if chosen in ids else (ids[0] if ids else None)
    return {ui.empty: gr.Group(visible=not items), ui.table: table_view(items) if items else "",
            ui.chosen: gr.Dropdown(choices=[(f"{e['title']} · {badge(e)}", e["id"]) for e in items], value=value,
                                visible=bool(items))}


# ---- wiring ------------------------------------------------------------------------------------

def wire_experiments(ui: ExperimentsUI, nav: Nav, models=None) -> None:
    view_outputs = [ui.view, ui.header, ui.snapshot, ui.grid, ui.snapshot_md, ui.save_sample, ui.loss_plot,
                    ui.ada_plot, ui.log, ui.stop_btn, ui.more_steps, ui.continue_btn, ui.seen, ui.message]
    list_outs = [ui.empty, ui.table, ui.chosen, ui.list_message]

    @safe(ui.list_message, ERRORS)
    def list_experiments(chosen, request: gr.Request):
        return list_outputs(ui, jobs_core.list_experiments(user_of(request)), chosen)

    @safe(ui.message, ERRORS)
    def show_experiment(exp_id, request: gr.Request):
        if not exp_id:
            return {ui.view: gr.Column(visible=False)}
        return {**experiment_view(ui, exp_id, user_of(request), None, {}), ui.message: "",
                ui.video: gr.File(visible=False), ui.open_models: gr.Button(visible=False)}

    @safe(ui.message, ERRORS)
    def refresh(exp_id, step, seen, request: gr.Request):
        user = user_of(request)
        out = list_outputs(ui, jobs_core.list_experiments(user), exp_id)
        out[ui.chosen] = gr.Dropdown(choices=out[ui.chosen].choices)  # fresh badges; never move the selection
        return {**out, **(experiment_view(ui, exp_id, user, int(step or 0), seen or {}) if exp_id else {})}

    @safe(ui.message, ERRORS)
    def show_snapshot(exp_id, step, request: gr.Request):
        user = user_of(request)
        return snapshot_outputs(ui, jobs_core.get_experiment(exp_id, user),
                                jobs_core.experiment_snapshots(exp_id, user), int(step))

    @safe(ui.message, ERRORS)
    def export_video(exp_id, request: gr.Request, progress=gr.Progress()):
        e = jobs_core.get_experiment(exp_id or "", user_of(request))
        name = download_name(e["title"], f"progress over {e['step']:,} steps", ext="mp4")
        dest = video_core.progress_video(e["run_dir"], scratch_dir() / name, fps=8,
                                         progress_fn=lambda d, t: progress((d, t), desc="Writing the video"))
        return {ui.video: gr.File(value=str(dest), visible=True), ui.message: ok_text("The video is ready below.")}

    @safe(ui.message, ERRORS)
    def save_to_models(exp_id, step, name, request: gr.Request):
        m = models_core.save_snapshot(exp_id or "", int(step or 0), name, user_of(request))
        return {ui.message: ok_text(f"Saved “{m['name']}” (step {m.get('step') or 0:,}) to My Models."),
                ui.open_models: gr.Button(visible=True)}

    @safe(ui.message, ERRORS)
    def stop_experiment(exp_id, request: gr.Request):
        e = jobs_core.stop_experiment(exp_id or "", user_of(request))
        return {ui.header: header_view(e), **controls_view(ui, e),
                ui.message: ok_text("Stopping: the last snapshot is being saved." if e["state"] == "stopping"
                                    else "Stopped before it started.")}

    @safe(ui.message, ERRORS)
    def continue_experiment(exp_id, steps, request: gr.Request):
        e = jobs_core.continue_experiment(exp_id or "", user_of(request), steps=int(steps or 0))
        return {ui.header: header_view(e), **controls_view(ui, e),
                ui.message: ok_text(f"Queued again, to {e['steps']:,} steps in all.")}

    @safe(ui.message, ERRORS)
    def ask_delete(exp_id, request: gr.Request):
        e = jobs_core.get_experiment(exp_id or "", user_of(request))
        text = (f"**Delete “{md_escape(e['title'])}”?** Its {e['step']:,} trained steps and every snapshot will be "
                "lost. Models you saved from it stay in My Models.")
        return {ui.confirm: gr.Group(visible=True), ui.confirm_md: text}

    @safe(ui.list_message, ERRORS)
    def delete_experiment(exp_id, request: gr.Request):
        gone = jobs_core.delete_experiment(exp_id or "", user_of(request), stop=True)
        return {**list_outputs(ui, jobs_core.list_experiments(user_of(request)), None),
                ui.confirm: gr.Group(visible=False), ui.list_message: ok_text(
                    f"Deleted “{gone['title']}” ({gone['step']:,} steps and its snapshots).")}

    quiet = dict(show_progress="hidden")
    gr.on([ui.tab.select, nav.demo.load], list_experiments, ui.chosen, list_outs, api_name="list_experiments", **quiet)
    nav.open_experiment.change(list_experiments, nav.open_experiment, list_outs, api_name=False,  # another tab asks
                               **quiet)
    ui.chosen.change(show_experiment, ui.chosen, [*view_outputs, ui.video, ui.open_models],
                     api_name="show_experiment", **quiet)
    ui.timer.tick(refresh, [ui.chosen, ui.snapshot, ui.seen], [*list_outs[:3], *view_outputs], api_name=False,
                  concurrency_id="refresh", concurrency_limit=2, **quiet)
    ui.snapshot.input(show_snapshot, [ui.chosen, ui.snapshot], [ui.grid, ui.snapshot_md, ui.save_sample, ui.message],
                      api_name="show_snapshot", trigger_mode="always_last", **quiet)
    ui.export_btn.click(export_video, ui.chosen, [ui.video, ui.message], api_name="export_progress_video",
                        concurrency_id="render")
    ui.save_model_btn.click(save_to_models, [ui.chosen, ui.snapshot, ui.model_name], [ui.message, ui.open_models],
                            api_name="save_to_my_models", concurrency_id="render")
    ui.open_models.click(lambda: go_to(MODELS), None, nav.tabs, api_name=False)
    ui.empty_btn.click(lambda: go_to(NEW), None, nav.tabs, api_name=False)
    controls = [ui.stop_btn, ui.more_steps, ui.continue_btn]
    ui.stop_btn.click(stop_experiment, ui.chosen, [ui.header, *controls, ui.message], api_name="stop_experiment")
    ui.continue_btn.click(continue_experiment, [ui.chosen, ui.more_steps], [ui.header, *controls, ui.message],
                          api_name="continue_experiment")
    ui.delete_btn.click(ask_delete, ui.chosen, [ui.confirm, ui.confirm_md, ui.message], api_name="ask_delete_experiment")
    ui.confirm_yes.click(delete_experiment, ui.chosen, [*list_outs, ui.confirm], api_name="delete_experiment")
    ui.confirm_no.click(lambda: gr.Group(visible=False), None, ui.confirm, api_name=False)
