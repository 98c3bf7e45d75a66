"""New experiment tab: title, dataset (with a word on its size), pre-trained model cards, crop, one
steps control with a live ETA read from the worker's measurements, advanced options folded away;
Start asks the Experiments tab to open the new experiment (``Nav.open_experiment``)."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from PIL import Image, ImageDraw, ImageFont

from core import checkpoints as ck_core
from core import datasets as ds_core
from core import jobs as jobs_core
from core.datasets.common import MIN_TO_TRAIN
from core.datasets.ingest import size_advice
from core.sample_data import suggested_run
from core.stylegan.train_config import MAX_STEPS, TRANSFER_SMALL_DATA, TrainConfig

from .common import (CROP_CHOICES, DATASETS, EXPERIMENTS, Nav, TypedSlider, duration, go_to, md_escape, ok_text,
                     open_item, picked, safe, served, user_of)

USABLE = ("bundled", "downloaded", "imported")
ETA_POLL_S = 3.0     # while the worker measures a combination, the ETA line asks again this often
DEFAULTS = TrainConfig().replace(**TRANSFER_SMALL_DATA)   # what the form starts from
PRECISION_CHOICES = [("Automatic (named in the log)", "auto"), ("fp32", "fp32"), ("bf16 (GPU or CPU)", "bf16"),
                     ("fp16 (GPU, as the original)", "fp16")]


@dataclass
class NewExperimentUI:
    tab: gr.Tab
    empty: gr.Group
    empty_btn: gr.Button
    form: gr.Column
    title: gr.Textbox
    dataset: gr.Dropdown
    dataset_md: gr.Markdown
    dataset_count: gr.State
    warned: gr.State
    mosaic: gr.Image
    cards: gr.Gallery
    card_names: gr.State
    checkpoint: gr.Dropdown
    checkpoint_md: gr.Markdown
    download_btn: gr.Button
    crop: gr.Radio
    steps: gr.Slider
    eta: gr.Markdown
    eta_timer: gr.Timer
    batch: gr.Number
    snapshot_every: gr.Number
    aug: gr.Radio
    mirror: gr.Checkbox
    freeze_d: gr.Number
    lr: gr.Number
    time_cap: gr.Number
    precision: gr.Dropdown
    devices: gr.Number
    start: gr.Button
    message: gr.Markdown


def build_new_experiment() -> NewExperimentUI:
    with gr.Tab("2 · New experiment", id="new") as tab:
        with gr.Group(visible=False, elem_classes=["atelier-empty"]) as empty:
            gr.Markdown("**An experiment needs a dataset first.** Import a folder of images, or use the sample dataset.")
            empty_btn = gr.Button("Go to Datasets", variant="primary")
        with gr.Column() as form:
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    title = gr.Textbox(label="Title", placeholder="e.g. Ink drawings, first try", max_length=200)
                    dataset = gr.Dropdown(label="Dataset", choices=[], allow_custom_value=True)
                    dataset_md = gr.Markdown(elem_classes=["atelier-msg"], elem_id="atelier-dataset-info")
                with gr.Column(scale=1, min_width=180):
                    mosaic = gr.Image(label="Dataset sample", height=170, interactive=False, show_label=True)
            dataset_count, warned = gr.State(None), gr.State(None)
            cards = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel"], label="Pre-trained model: click a card (resolution · what it shows · state)",
                               columns=5, height=300, object_fit="contain", allow_preview=False)
            card_names = gr.State([])   # the checkpoint names of the cards, in the order drawn
            with gr.Row(equal_height=False):
                checkpoint = gr.Dropdown(label="Pre-trained model", choices=[], allow_custom_value=True, scale=2)
                with gr.Column(scale=3):
                    checkpoint_md = gr.Markdown()
                    download_btn = gr.Button("Download", visible=False, size="sm")
            crop = gr.Radio(CROP_CHOICES, value="center", label="Crop")
            steps = TypedSlider(1, MAX_STEPS, value=DEFAULTS.steps, step=1, label="Training steps",
                                elem_id="atelier-steps", info=f"Type a number or drag: 1 to {MAX_STEPS:,} ({DEFAULTS.steps:,} suits most datasets).")
            eta = gr.Markdown("ETA: choose a dataset and a model.", elem_id="atelier-eta", elem_classes=["atelier-msg"])
            eta_timer = gr.Timer(ETA_POLL_S, active=False)
            with gr.Accordion("Advanced options (defaults suit small datasets)", open=False):
                with gr.Row():
                    batch = gr.Number(value=DEFAULTS.batch, precision=0, label="Batch (0 = automatic)")
                    snapshot_every = gr.Number(value=0, precision=0,
                                               label="Snapshot every N steps (0 = automatic: every few minutes)")
                    lr = gr.Number(value=DEFAULTS.lr_g, label="Learning rate (0 = automatic)")
                    precision = gr.Dropdown(PRECISION_CHOICES, value=DEFAULTS.precision, label="Precision")
                    devices = gr.Number(value=DEFAULTS.devices, precision=0, minimum=1, visible=False,  # with 2+ GPUs
                                        label="GPUs (the batch is split between them)")
                with gr.Row():
                    aug = gr.Radio([("ADA", "ada"), ("DiffAugment", "diffaugment"), ("Off", "none")],
                                   value=DEFAULTS.aug, label="Augmentation")
                    mirror = gr.Checkbox(value=DEFAULTS.mirror, label="Mirror images (x-flips)")
                    freeze_d = gr.Number(value=DEFAULTS.freeze_d, precision=0, label="Freeze-D: frozen D layers")
                    time_cap = gr.Number(value=DEFAULTS.time_budget_s / 60, label="Time cap in minutes (0 = none)")
            start = gr.Button("Start training", variant="primary", size="lg")
            message = gr.Markdown(elem_classes=["atelier-msg"])
    return NewExperimentUI(**{k: v for k, v in locals().items() if k in NewExperimentUI.__dataclass_fields__})


# ---- views -------------------------------------------------------------------------------------

def card_placeholder(entry: dict) -> Image.Image:
    img = Image.new("RGB", (256, 256), (70, 74, 86))
    d = ImageDraw.Draw(img)
    big, small = ImageFont.load_default(size=22), ImageFont.load_default(size=15)
    words, lines = entry["title"].split(), [""]
    for w in words:  # wrap at about 20 characters
        lines[-1:] = [lines[-1] + " " + w] if len(lines[-1]) + len(w) < 20 else [lines[-1], w]
    for i, line in enumerate(lines[:4]):
        d.text((16, 70 + 28 * i), line.strip(), fill=(255, 255, 255), font=big)
    d.text((16, 200), f"{entry['resolution'] or '?'} px · {state_text(entry)}", fill=(220, 220, 220), font=small)
    return img


def state_text(entry: dict) -> str:
    return {"not downloaded": f"download {entry['size_text']}", "missing": "file missing"}.get(entry["state"],
                                                                                              entry["state"])


def cards_view(entries: list[dict]) -> list:
    return [(served(e["thumbnail"]) or card_placeholder(e),
             f"{e['title']} · {e['resolution'] or '?'} px · {state_text(e)}") for e in entries]


def ordered_checkpoints(user: str) -> list[dict]:
    """Usable ones first (bundled default, imports, downloads), then the catalog to download."""
    entries = ck_core.list_checkpoints(user)
    return sorted(entries, key=lambda e: (e["state"] not in USABLE, e["kind"] != "bundled"))


def checkpoint_text(e: dict) -> str:
    if e["state"] == "missing":
        return (f"**{md_escape(e['title'])}** is not available on this installation yet (its file is missing); "
                "choose another model.")
    note = f" {md_escape(e['note'])}." if e.get("note") else ""
    return (f"**{md_escape(e['title'])}** · {e['resolution'] or '?'} px · {state_text(e)}. "
            f"{md_escape(e['depicts'])}{note}")


def options_of(batch, snapshot_every, aug, mirror, freeze_d, lr, time_cap, precision="auto", devices=1) -> dict:
    opts = {"batch": int(batch or 0), "snapshot_every": int(snapshot_every or 0), "aug": aug,
            "mirror": bool(mirror), "freeze_d": int(freeze_d or 0), "time_budget_s": float(time_cap or 0) * 60,
            "precision": precision or "auto", "devices": int(devices or 1)}
    if lr:
        opts.update(lr_g=float(lr), lr_d=float(lr))
    return opts


def eta_text(est: dict, snapshot_every) -> str:
    """'ETA for 3,000 steps: about 40 min on this CPU · measured on this machine from 2 runs: ...' and the
    snapshot interval; before any measurement, what is being done about it."""
    head = f"ETA for {est['steps']:,} steps"
    every = ("a snapshot every step" if est["snapshot_every"] == 1
             else f"a snapshot every {est['snapshot_every']:,} steps")
    if not snapshot_every:
        seconds = est["snapshot_every"] * est["sec_per_step"] if est.get("sec_per_step") else None
        every += f" (automatic: about every {duration(seconds)})" if seconds else " (automatic)"
    if est.get("eta_seconds") is None:
        more = " It appears here by itself." if est.get("pending") else ""
        return f"{head}: {md_escape(est['basis'])}.{more} · {every}"
    return f"**{head}: {est['text']}** · {md_escape(est['basis'])} · {every}"


def dataset_view(d: dict | None) -> str:
    if not d:
        return ""
    advice = size_advice(d["count"])
    return f"{d['count']:,} images · {d['size']}" + (f"  \n⚠ {md_escape(advice)}" if advice else "")


def too_small_text(count: int) -> str:
    return f"⚠ {md_escape(size_advice(count))} Press “Start training” again to train anyway."


# ---- wiring ------------------------------------------------------------------------------------

def wire_new_experiment(ui: NewExperimentUI, nav: Nav) -> None:
    errors = (jobs_core.JobsError, ck_core.CheckpointsError, ds_core.DatasetError)

    @safe(ui.message, errors)
    def load_form(dataset, checkpoint, request: gr.Request):
        user = user_of(request)
        items = ds_core.list_datasets(user)
        entries = ordered_checkpoints(user)
        choices = [(f"{e['title']} ({state_text(e)})", e["name"]) for e in entries]
        chosen = checkpoint if checkpoint in {e["name"] for e in entries} else entries[0]["name"]
        ds_value = dataset if dataset in {d["id"] for d in items} else (items[0]["id"] if items else None)
        gpus = len(jobs_core.machine_devices())
        return {ui.empty: gr.Group(visible=not items), ui.form: gr.Column(visible=bool(items)),
                ui.devices: gr.Number(visible=gpus > 1, maximum=max(gpus, 1)),
                ui.dataset: gr.Dropdown(choices=[(d["name"], d["id"]) for d in items], value=ds_value),
                ui.cards: cards_view(entries), ui.card_names: [e["name"] for e in entries],
                ui.checkpoint: gr.Dropdown(choices=choices, value=chosen)}

    @safe(ui.message, errors)
    def show_dataset(dataset, warned, request: gr.Request):
        d = ds_core.get_dataset(dataset, user_of(request)) if dataset else None
        shown = {ui.mosaic: served(d["mosaic"]) if d else None, ui.dataset_md: dataset_view(d),
                 ui.dataset_count: d["count"] if d else None}
        if warned in (None, dataset):  # the dropdown repeats its change on blur: a question just asked stays
            return {**shown, ui.warned: gr.skip(), ui.message: gr.skip()}
        return {**shown, ui.warned: None, ui.message: ""}

    @safe(ui.message, errors)
    def suggest_steps(dataset, checkpoint, request: gr.Request):
        d = ds_core.get_dataset(dataset, user_of(request)) if dataset else None
        run = suggested_run(d["name"] if d else "", checkpoint or "")
        if run is None:
            return {ui.message: gr.skip()}
        return {ui.steps: run["steps"], ui.snapshot_every: run["snapshot_every"],
                ui.message: f"Suggested for a first try of the sample: {run['steps']:,} steps, a snapshot every "
                            f"{run['snapshot_every']} (the images move toward the sample within minutes on a CPU)."}

    @safe(ui.checkpoint_md, errors)
    def describe_checkpoint(checkpoint, request: gr.Request):
        e = next((e for e in ck_core.list_checkpoints(user_of(request)) if e["name"] == checkpoint), None)
        if e is None:
            return {ui.checkpoint_md: "", ui.download_btn: gr.Button(visible=False)}
        return {ui.checkpoint_md: checkpoint_text(e), ui.download_btn: gr.Button(
            f"Download {e['title']} ({e['size_text']})", visible=e["state"] == "not downloaded")}

    @safe(ui.checkpoint_md, errors)
    def download_checkpoint(checkpoint, progress=gr.Progress()):  # the catalog cache is shared by all users
        ck_core.download_checkpoint(checkpoint, progress_fn=lambda done, total: progress(
            (done, total) if total else None, desc="Downloading"))
        return {ui.checkpoint_md: ok_text(f"Downloaded {checkpoint}."), ui.download_btn: gr.Button(visible=False)}

    @safe(ui.eta, errors)
    def estimate(checkpoint, steps, dataset, crop, batch, snapshot_every, precision, request: gr.Request):
        if not checkpoint:
            return {ui.eta: "ETA: choose a pre-trained model.", ui.eta_timer: gr.Timer(active=False)}
        est = jobs_core.estimate_experiment(user_of(request), checkpoint, steps, batch=batch, dataset=dataset or None,
                                            crop=crop, snapshot_every=snapshot_every, precision=precision)
        return {ui.eta: eta_text(est, snapshot_every), ui.eta_timer: gr.Timer(active=est["pending"])}

    @safe(ui.message, errors)
    def start_experiment(title, dataset, checkpoint, crop, steps, batch, snapshot_every, aug, mirror, freeze_d, lr,
                         time_cap, precision, devices, count, warned, request: gr.Request):
        if count is not None and count < MIN_TO_TRAIN and warned != dataset:  # the second press trains anyway
            return {ui.message: too_small_text(count), ui.warned: dataset}
        options = options_of(batch, snapshot_every, aug, mirror, freeze_d, lr, time_cap, precision, devices)
        exp_id = jobs_core.submit_experiment(user_of(request), title=title, dataset=dataset or "",
                                             checkpoint=checkpoint or "", steps=steps, crop=crop, options=options)
        return {ui.message: ok_text("Queued."), ui.warned: None, nav.open_experiment: open_item(exp_id),
                nav.tabs: go_to(EXPERIMENTS)}

    form_outputs = [ui.empty, ui.form, ui.dataset, ui.cards, ui.card_names, ui.checkpoint, ui.devices, ui.message]
    ui.tab.select(load_form, [ui.dataset, ui.checkpoint], form_outputs, api_name="new_experiment_form",
                  show_progress="hidden")
    ui.empty_btn.click(lambda: go_to(DATASETS), None, nav.tabs, api_name=False)
    ui.dataset.change(show_dataset, [ui.dataset, ui.warned], [ui.mosaic, ui.dataset_md, ui.dataset_count, ui.warned, ui.message],
                      api_name="dataset_mosaic", show_progress="hidden")
    ui.checkpoint.change(describe_checkpoint, ui.checkpoint, [ui.checkpoint_md, ui.download_btn],
                         api_name="describe_checkpoint", show_progress="hidden")
    gr.on([ui.dataset.change, ui.checkpoint.change], suggest_steps, [ui.dataset, ui.checkpoint],
          [ui.steps, ui.snapshot_every, ui.message], api_name="suggest_steps", show_progress="hidden")
    ui.cards.select(picked, ui.card_names, ui.checkpoint, api_name=False)
    ui.download_btn.click(download_checkpoint, ui.checkpoint, [ui.checkpoint_md, ui.download_btn],
                          api_name="download_checkpoint", concurrency_id="download")
    gr.on([ui.checkpoint.change, ui.steps.change, ui.dataset.change, ui.crop.change, ui.batch.blur, ui.batch.submit,
           ui.snapshot_every.blur, ui.snapshot_every.submit, ui.precision.change, ui.eta_timer.tick], estimate,
          [ui.checkpoint, ui.steps, ui.dataset, ui.crop, ui.batch, ui.snapshot_every, ui.precision],
          [ui.eta, ui.eta_timer],
          api_name="estimate_experiment", trigger_mode="always_last", concurrency_id="eta", show_progress="hidden")
    ui.start.click(start_experiment, [ui.title, ui.dataset, ui.checkpoint, ui.crop, ui.steps, ui.batch,
                                      ui.snapshot_every, ui.aug, ui.mirror, ui.freeze_d, ui.lr, ui.time_cap,
                                      ui.precision, ui.devices, ui.dataset_count, ui.warned],
                   [ui.message, ui.warned, nav.open_experiment, nav.tabs], api_name="start_experiment")
