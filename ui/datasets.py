"""Datasets tab: drop a folder / zip / video, see the report and crop previews, list and delete."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from core import datasets as ds_core
from core import quota
from core.sample_data import DEMO_SAMPLE, SAMPLES, sample_dataset

from .common import NEW, Nav, go_to, ok_text, safe, scratch_dir, served, user_of, when

UPLOAD_TYPES = sorted(ds_core.common.IMAGE_EXTS | ds_core.common.VIDEO_EXTS | ds_core.common.ARCHIVE_EXTS)
JOURNEY = ("**Your images → a dataset → an experiment that fine-tunes a pre-trained model → "
           "your own model → new images in the Playground.** Start with a dataset:")
ADVICE = ("500 to 5,000 images are suggested (fewer than 300 is risky); images similar in content "
          "and style work best.")
DROP_HTML = """
<div class="atelier-drop" tabindex="0" role="button" aria-label="Drop a folder, zip or video here, or press Enter to pick a folder">
  <div class="big">Drop a folder of images, a .zip or a video here</div>
  <div>subfolders are kept · or click to pick a folder</div>
  <div class="atelier-drop-status" aria-live="polite"></div>
</div>"""


@dataclass
class DatasetsUI:
    tab: gr.Tab
    welcome: gr.Column
    use_sample: gr.Button
    sample_choice: gr.Radio
    upload_own: gr.Button
    files: gr.File
    folder: gr.File
    relpaths: gr.Textbox
    name: gr.Textbox
    crop: gr.Radio
    mirror: gr.Checkbox
    rotate: gr.Checkbox
    zoom: gr.Slider
    count_md: gr.Markdown
    previews: gr.Gallery
    import_btn: gr.Button
    message: gr.Markdown
    report: gr.Markdown
    rejected: gr.Gallery
    next_btn: gr.Button
    listing_box: gr.Column
    listing: gr.Gallery
    chosen: gr.Dropdown
    delete_btn: gr.Button
    confirm: gr.Group
    confirm_md: gr.Markdown
    confirm_yes: gr.Button
    confirm_no: gr.Button
    list_message: gr.Markdown
    storage: gr.Markdown


def build_datasets() -> DatasetsUI:
    with gr.Tab("1 · Datasets", id="datasets") as tab:
        with gr.Column(visible=False, elem_classes=["atelier-welcome"]) as welcome:
            gr.Markdown(JOURNEY, elem_classes=["atelier-journey"])
            gr.Gallery(samples_view(), label="Sample datasets (real artwork; licences in static/datasets/NOTICE)",
                       columns=len(SAMPLES), height="auto", object_fit="contain", fit_columns=False,
                       elem_classes=["atelier-pixel"], interactive=False, buttons=[])
            sample_choice = gr.Radio([(f"{s.name[len('Sample '):]} ({s.count()})", s.key) for s in SAMPLES.values()],
                                     value=DEMO_SAMPLE, label="Sample dataset")
            with gr.Row():
                use_sample = gr.Button("Use the sample dataset", variant="primary")
                upload_own = gr.Button("Upload your images")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gr.HTML(DROP_HTML)
                files = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, elem_id="atelier-files",
                                label="Images, a .zip or a video (dropped or picked)", height=140)
                folder = gr.File(file_count="directory", elem_id="atelier-folder", label="Pick a folder", height=130)
                relpaths = gr.Textbox(visible="hidden", elem_id="atelier-relpaths", label="relative paths")
            with gr.Column(scale=2):
                name = gr.Textbox(label="Dataset name", placeholder="e.g. Ink drawings", max_length=100)
                crop = gr.Radio([("Center", "center"), ("Random", "random"), ("No crop (stretch)", "none")],
                                value="center", label="Make images square by")
                with gr.Accordion("Inflate: more training images from the same ones", open=False):
                    with gr.Row():
                        mirror = gr.Checkbox(label="Mirror")
                        rotate = gr.Checkbox(label="Rotate (90°, 180°, 270°)")
                    zoom = gr.Slider(0, 8, value=0, step=1, label="Zoomed crops per image")
                count_md = gr.Markdown(ADVICE)
                import_btn = gr.Button("Import dataset", variant="primary")
                message = gr.Markdown(elem_classes=["atelier-msg"])
                storage = gr.Markdown(elem_classes=["atelier-storage"])
        previews = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel"], label="Crop preview: the same images as center · random · random (again) · no crop",
                              columns=6, height=420, object_fit="contain", visible=False)
        report = gr.Markdown()
        rejected = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel"], label="Rejected files (reason under each)", columns=6, height=220, visible=False)
        next_btn = gr.Button("Next: start an experiment with it →", visible=False, variant="primary")
        with gr.Column(visible=False) as listing_box:
            gr.Markdown("### Your datasets")
            listing = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel"], label="Datasets (click one to select it)", columns=5, height=240, object_fit="contain")
            with gr.Row():
                chosen = gr.Dropdown(label="Selected dataset", choices=[], allow_custom_value=True, scale=3)
                delete_btn = gr.Button("Delete…", variant="stop", scale=1)
            with gr.Group(visible=False) as confirm:
                confirm_md = gr.Markdown()
                with gr.Row():
                    confirm_yes = gr.Button("Yes, delete it", variant="stop")
                    confirm_no = gr.Button("Cancel")
            list_message = gr.Markdown(elem_classes=["atelier-msg"])
    return DatasetsUI(**{k: v for k, v in locals().items() if k in DatasetsUI.__dataclass_fields__})


# ---- views (plain functions of core values) ---------------------------------------------------

def stage_uploads(files, folder, relpaths: str) -> list[str]:
    """Uploaded temp files as import sources: images and videos linked into one folder under their
    dropped relative paths (subfolders kept), zips as sources of their own."""
    paths = [Path(p) for p in list(files or []) + list(folder or [])]
    if not paths:
        raise ds_core.DatasetError("Add some images first: drop a folder, a zip or a video, or pick a folder.")
    wanted: dict[tuple, list[str]] = {}
    for item in json.loads(relpaths or "[]") if (relpaths or "").startswith("[") else []:
        wanted.setdefault((item.get("name"), item.get("size")), []).append(str(item.get("path", "")))
    root = scratch_dir() / "upload"
    root.mkdir()
    sources = [str(root)]
    for p in paths:
        if p.suffix.lower() in ds_core.common.ARCHIVE_EXTS:
            sources.append(str(p))
            continue
        rel = (wanted.get((p.name, p.stat().st_size)) or [p.name]).pop(0)
        rel = "/".join(part for part in rel.split("/") if part not in ("", ".", ".."))
        dest = root / rel
        while dest.exists():
            dest = dest.with_name("_" + dest.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(p, dest)
        except OSError:
            shutil.copyfile(p, dest)
    return sources if any(root.iterdir()) or len(sources) == 1 else sources[1:]


def _placeholder(text: str = "?") -> Image.Image:
    img = Image.new("RGB", (96, 96), (120, 120, 120))
    ImageDraw.Draw(img).text((40, 40), text, fill=(255, 255, 255))
    return img


def _thumb(sources: list[str], label: str):
    root = Path(sources[0])
    for cand in (root / label, root / label.split("/", 1)[-1]):
        try:
            with Image.open(cand) as im:
                im.thumbnail((128, 128))
                return im.convert("RGB")
        except Exception:  # noqa: BLE001 - a rejected file is often unreadable: show a placeholder
            continue
    return _placeholder()


def report_view(rep: dict, sources: list[str]) -> tuple[str, list]:
    conv = ", ".join(f"{n} {k}" for k, n in rep.get("converted", {}).items()) or "none"
    lines = [f"### Report: {rep['name']}",
             f"**{rep['accepted']:,} accepted** · {len(rep['rejected']):,} rejected · converted: {conv} · "
             f"{len(rep.get('exact_duplicates', [])):,} duplicate groups dropped · "
             f"{rep.get('training_images', rep['accepted']):,} training images",
             *[f"- {w}" for w in rep.get("warnings", [])]]
    gallery = [(_thumb(sources, r["file"]), f"{r['file']}: {r['reason']}") for r in rep["rejected"][:60]]
    return "\n\n".join(lines), gallery


def previews_view(pv: dict) -> list:
    rows = (("center", "center"), ("random", "random"), ("random_2", "random (again)"), ("none", "no crop"))
    return [(img, label) for key, label in rows for img in pv[key]]


def listing_view(items: list[dict]) -> tuple[list, list]:
    gallery = [(served(d["mosaic"]) or _placeholder(d["name"][:1]),
                f"{d['name']} · {d['count']:,} images") for d in items]
    return gallery, [(f"{d['name']} · {d['count']:,} images · {d['size']} · created {when(d['created'])}", d["id"])
                     for d in items]


def storage_view(user: str) -> str:
    try:
        return quota.storage_line(user)
    except quota.QuotaError as e:  # a bad ATELIER_USER_QUOTA_GB: say so instead of a usage line
        return str(e)


def refresh(ui: DatasetsUI, user: str, select: str | None = None) -> dict:
    items = ds_core.list_datasets(user)
    gallery, choices = listing_view(items)
    value = select if select else (choices[0][1] if choices else None)
    return {ui.listing: gallery, ui.chosen: gr.Dropdown(choices=choices, value=value),
            ui.welcome: gr.Column(visible=not items), ui.listing_box: gr.Column(visible=bool(items)),
            ui.storage: storage_view(user)}


def samples_view() -> list:
    return [(s.mosaic(), f"{s.name[len('Sample '):]}: {s.what} ({s.count()})") for s in SAMPLES.values()]


# ---- wiring ------------------------------------------------------------------------------------

def wire_datasets(ui: DatasetsUI, nav: Nav) -> None:
    errors = (ds_core.DatasetError,)
    list_outputs = [ui.listing, ui.chosen, ui.welcome, ui.listing_box, ui.list_message, ui.storage]

    @safe(ui.list_message, errors)
    def list_datasets(request: gr.Request):
        return refresh(ui, user_of(request))

    @safe(ui.message, errors)
    def preview_crops(files, folder, relpaths, mirror, rotate, zoom, request: gr.Request):
        sources = stage_uploads(files, folder, relpaths)
        pv = ds_core.crop_previews(sources, n=6, resolution=96, user=user_of(request))
        n = len(list(files or []) + list(folder or []))
        count = ds_core.inflated_count(n, {"mirror": mirror, "rotate": rotate, "zoom": int(zoom)})
        return {ui.previews: gr.Gallery(value=previews_view(pv), visible=True), ui.message: "",
                ui.count_md: f"{n:,} files ready → about **{count:,} training images**. {ADVICE}"}

    @safe(ui.message, errors)
    def import_uploads(files, folder, relpaths, name, crop, mirror, rotate, zoom, request: gr.Request,
                       progress=gr.Progress()):
        sources = stage_uploads(files, folder, relpaths)
        rep = ds_core.import_dataset(sources, name, user=user_of(request), crop=crop,
                                     inflate={"mirror": mirror, "rotate": rotate, "zoom": int(zoom)},
                                     progress_fn=lambda done, total: progress((done, total), desc="Importing"))
        md, rejected = report_view(rep.to_dict(), sources)
        return {**refresh(ui, user_of(request), rep.dataset_id), ui.report: md,
                ui.rejected: gr.Gallery(value=rejected, visible=bool(rejected)), ui.next_btn: gr.Button(visible=True),
                ui.message: ok_text(f"Imported {rep.accepted:,} images as “{rep.name}”.")}

    @safe(ui.message, errors)
    def use_sample_dataset(sample, request: gr.Request, progress=gr.Progress()):
        user, chosen = user_of(request), sample_dataset(sample or DEMO_SAMPLE)
        if any(d["name"] == chosen.name for d in ds_core.list_datasets(user)):
            return {**refresh(ui, user), ui.message: ok_text(f"“{chosen.name}” is already here.")}
        rep = ds_core.import_dataset([str(chosen.path)], chosen.name, user=user,
                                     progress_fn=lambda d, t: progress((d, t), desc="Importing the sample"))
        return {**refresh(ui, user, rep.dataset_id), ui.next_btn: gr.Button(visible=True),
                ui.message: ok_text(f"Added “{chosen.name}”: {rep.accepted:,} images of {chosen.what} to try.")}

    @safe(ui.list_message, errors)
    def ask_delete(dataset, request: gr.Request):
        d = ds_core.get_dataset(dataset or "", user_of(request))
        text = (f"**Delete “{d['name']}”?** Its {d['count']:,} images ({d['size']}) will be lost; "
                "experiments already trained from it keep their snapshots.")
        return {ui.confirm: gr.Group(visible=True), ui.confirm_md: text, ui.list_message: ""}

    @safe(ui.list_message, errors)
    def delete_dataset(dataset, request: gr.Request):
        gone = ds_core.delete_dataset(dataset or "", user_of(request))
        return {**refresh(ui, user_of(request)), ui.confirm: gr.Group(visible=False),
                ui.list_message: ok_text(f"Deleted “{gone['name']}” ({gone['count']:,} images).")}

    def pick_from_gallery(evt: gr.SelectData, request: gr.Request):
        items = ds_core.list_datasets(user_of(request))
        return gr.Dropdown(value=items[evt.index]["id"]) if 0 <= evt.index < len(items) else gr.Dropdown()

    gr.on([ui.tab.select, nav.demo.load], list_datasets, None, list_outputs, api_name="list_datasets",
          show_progress="hidden")
    gr.on([ui.files.upload, ui.folder.upload], preview_crops,
          [ui.files, ui.folder, ui.relpaths, ui.mirror, ui.rotate, ui.zoom],
          [ui.previews, ui.message, ui.count_md], api_name="preview_crops", concurrency_id="io")
    ui.import_btn.click(import_uploads, [ui.files, ui.folder, ui.relpaths, ui.name, ui.crop, ui.mirror, ui.rotate,
                                         ui.zoom],
                        [*list_outputs, ui.report, ui.rejected, ui.next_btn, ui.message], api_name="import_dataset",
                        concurrency_id="io")
    ui.use_sample.click(use_sample_dataset, ui.sample_choice, [*list_outputs, ui.next_btn, ui.message],
                        api_name="use_sample_dataset", concurrency_id="io")
    ui.upload_own.click(None, js="() => document.querySelector('#atelier-folder input[type=file]')?.click()")
    ui.listing.select(pick_from_gallery, None, ui.chosen, api_name=False)
    ui.delete_btn.click(ask_delete, ui.chosen, [ui.confirm, ui.confirm_md, ui.list_message], api_name="ask_delete_dataset")
    ui.confirm_yes.click(delete_dataset, ui.chosen, [*list_outputs, ui.confirm], api_name="delete_dataset")
    ui.confirm_no.click(lambda: gr.Group(visible=False), None, ui.confirm, api_name=False)
    ui.next_btn.click(lambda: go_to(NEW), None, nav.tabs, api_name=False)
