"""Datasets tab: one drop zone (a folder, a zip, a video or images) and one folder picker; crop
previews of the least square images that follow the crop choice; the import report (rejected
files, near-duplicates to review); the list of datasets with delete."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from core import datasets as ds_core
from core import quota
from core.sample_data import DEMO_SAMPLE, SAMPLES, sample_dataset

from .common import CROP_CHOICES, NEW, Nav, go_to, md_escape, ok_text, picked, safe, scratch_dir, served, user_of, when

UPLOAD_TYPES = sorted(ds_core.common.IMAGE_EXTS | ds_core.common.VIDEO_EXTS | ds_core.common.ARCHIVE_EXTS)
PREVIEWS = 6
JOURNEY = ("**Your images → a dataset → an experiment that fine-tunes a pre-trained model → "
           "your own model → new images in the Playground.** Drop a folder of your images below, "
           "or start with the sample dataset:")
ADVICE = ("500 to 5,000 images are suggested (fewer than 300 is risky); images similar in content "
          "and style work best.")
DROP_LABEL = "Drop a folder of images, a .zip or a video here, or click to choose files"
TILE_ROW_PX = 215     # a captioned tile is at most 180 px wide (atelier.css), plus its caption
DROP_STATUS = '<div class="atelier-drop-status" aria-live="polite"></div>'
CROP_ROWS = {"center": (("center", "center crop"),), "random": (("random", "random crop, draw 1"),
                                                                ("random_2", "random crop, draw 2")),
             "none": (("none", "stretched to a square"),)}


@dataclass
class DatasetsUI:
    tab: gr.Tab
    welcome: gr.Column
    use_sample: gr.Button
    sample_choice: gr.Radio
    files: gr.File
    pick_folder: gr.Button
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
    near: gr.Gallery
    next_btn: gr.Button
    listing_box: gr.Column
    listing: gr.Gallery
    listing_ids: gr.State
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
            use_sample = gr.Button("Use the sample dataset", variant="secondary", size="md", scale=0)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                files = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, elem_id="atelier-files",
                                elem_classes=["atelier-drop"], label=DROP_LABEL, height=150)
                with gr.Row(equal_height=True):
                    pick_folder = gr.Button("Choose a folder…", elem_id="atelier-pick-folder", scale=0,
                                            min_width=190, size="md")
                    gr.HTML(DROP_STATUS)
                # For API clients only: the files of a folder (the page sends everything through `files`).
                folder = gr.File(file_count="directory", visible=False, label="Files of a folder")
                relpaths = gr.Textbox(visible="hidden", elem_id="atelier-relpaths", label="relative paths")
            with gr.Column(scale=2):
                name = gr.Textbox(label="Dataset name", placeholder="e.g. Ink drawings", max_length=100)
                crop = gr.Radio(CROP_CHOICES, value="center", label="Make images square by", elem_id="atelier-crop")
                with gr.Accordion("Inflate: more training images from the same ones", open=False):
                    with gr.Row():
                        mirror = gr.Checkbox(label="Mirror")
                        rotate = gr.Checkbox(label="Rotate (90°, 180°, 270°)")
                    zoom = gr.Slider(0, 8, value=0, step=1, label="Zoomed crops per image")
                count_md = gr.Markdown(ADVICE, elem_id="atelier-count")
                import_btn = gr.Button("Import dataset", variant="primary")
                message = gr.Markdown(elem_classes=["atelier-msg"])
                storage = gr.Markdown(elem_classes=["atelier-storage"])
        previews = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel", "atelier-captioned"],
                              elem_id="atelier-previews",
                              label="Crop preview", columns=PREVIEWS, height="auto", object_fit="contain",
                              visible=False, allow_preview=False)
        report = gr.Markdown(elem_classes=["atelier-report"])
        rejected = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel", "atelier-captioned"],
                              label="Rejected files (the reason under each)", columns=6, height="auto",
                              visible=False, allow_preview=False)
        near = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel", "atelier-captioned"],
                          elem_id="atelier-near", label="Near-duplicates kept: review them (one group after another)",
                          columns=6, height="auto", visible=False, allow_preview=False)
        next_btn = gr.Button("Next: start an experiment with it →", visible=False, variant="primary")
        with gr.Column(visible=False) as listing_box:
            gr.Markdown("### Your datasets")
            listing = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel"], label="Datasets (click one to select it)", columns=5, height=240, object_fit="contain")
            listing_ids = gr.State([])   # the dataset ids of the listing, in the order drawn
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


def report_view(rep: dict, sources: list[str]) -> tuple[str, list, list]:
    """The report card (Markdown, every name escaped), the rejected files with their reasons, and the
    near-duplicate groups kept (each file captioned with its group), for review."""
    conv = ", ".join(f"{n} {k}" for k, n in rep.get("converted", {}).items()) or "none"
    near = rep.get("near_duplicates", [])
    lines = [f"### Report: {md_escape(rep['name'])}",
             f"**{rep['accepted']:,} accepted** of {rep['total']:,} files · {len(rep['rejected']):,} rejected · "
             f"converted: {md_escape(conv)} · {len(rep.get('exact_duplicates', [])):,} duplicate groups dropped · "
             f"{len(near):,} near-duplicate group{'s' if len(near) != 1 else ''} kept · "
             f"{rep.get('training_images', rep['accepted']):,} training images",
             *[f"- {md_escape(w)}" for w in rep.get("warnings", [])]]
    rejected = [(_thumb(sources, r["file"]), f"{r['file']}: {r['reason']}") for r in rep["rejected"][:60]]
    groups = [(_thumb(sources, f), f"group {k}: {f}") for k, g in enumerate(near[:10], 1) for f in g[:6]]
    return "\n\n".join(lines), rejected, groups


def previews_view(pv: dict, crop: str) -> gr.Gallery:
    """The whole images above, the same images as trained under ``crop`` below (two draws for random)."""
    rows = (("pad", "whole image"), *CROP_ROWS.get(crop, CROP_ROWS["center"]))
    crop_name = dict((v, k) for k, v in CROP_CHOICES).get(crop, crop)
    n = len(pv["labels"])
    return gr.Gallery(value=[(img, f"{label} · {what}") for key, what in rows for img, label in zip(pv[key], pv["labels"])],
                      columns=n, visible=True, height=gallery_height(len(rows)),
                      label=f"Crop preview — {crop_name}: your {n} least square images, whole (top row) and as "
                            "they will be trained (below)")


def gallery_height(rows: int, caption_lines: int = 2) -> int:
    return 60 + rows * (TILE_ROW_PX + 20 * (caption_lines - 2))


def tiles(items: list) -> gr.Gallery:
    """A captioned gallery just tall enough for its rows (hidden when empty)."""
    return gr.Gallery(value=items, visible=bool(items), height=gallery_height(-(-len(items) // 6), 3))


def count_text(found: int, inflate: dict) -> str:
    """What is known before the import checks the files: how many images were found, not how many are usable."""
    per = ds_core.inflated_count(1, inflate)
    more = f" With this inflation each usable image becomes {per} training images." if per > 1 else ""
    return (f"**{found:,} image{'s' if found != 1 else ''} found**; the import checks each one (unreadable, "
            f"tiny, blank and duplicate files are left out).{more} {ADVICE}")


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
    return {ui.listing: gallery, ui.listing_ids: [d["id"] for d in items],
            ui.chosen: gr.Dropdown(choices=choices, value=value),
            ui.welcome: gr.Column(visible=not items), ui.listing_box: gr.Column(visible=bool(items)),
            ui.storage: storage_view(user)}


def samples_view() -> list:
    return [(s.mosaic(), f"{s.name[len('Sample '):]}: {s.what} ({s.count()})") for s in SAMPLES.values()]


# ---- wiring ------------------------------------------------------------------------------------

def staged(files, folder, relpaths) -> list[str]:
    """The uploads of the drop zone and the folder picker as import sources (core checks the paths)."""
    return ds_core.stage_uploads(list(files or []) + list(folder or []), relpaths, scratch_dir())


def wire_datasets(ui: DatasetsUI, nav: Nav) -> None:
    errors = (ds_core.DatasetError,)
    list_outputs = [ui.listing, ui.listing_ids, ui.chosen, ui.welcome, ui.listing_box, ui.list_message, ui.storage]

    @safe(ui.list_message, errors)
    def list_datasets(request: gr.Request):
        return refresh(ui, user_of(request))

    @safe(ui.message, errors)
    def preview_crops(files, folder, relpaths, crop, mirror, rotate, zoom, request: gr.Request):
        if not (files or folder):  # cleared, or a crop chosen before any upload
            return {ui.previews: gr.Gallery(visible=False), ui.count_md: ADVICE, ui.message: ""}
        pv = ds_core.crop_previews(staged(files, folder, relpaths), n=PREVIEWS, resolution=96,
                                   user=user_of(request))
        return {ui.previews: previews_view(pv, crop), ui.message: "",
                ui.count_md: count_text(pv["found"], {"mirror": mirror, "rotate": rotate, "zoom": int(zoom)})}

    @safe(ui.message, errors)
    def import_uploads(files, folder, relpaths, name, crop, mirror, rotate, zoom, request: gr.Request,
                       progress=gr.Progress()):
        sources = staged(files, folder, relpaths)
        rep = ds_core.import_dataset(sources, name, user=user_of(request), crop=crop,
                                     inflate={"mirror": mirror, "rotate": rotate, "zoom": int(zoom)},
                                     progress_fn=lambda done, total: progress((done, total), desc="Importing"),
                                     wait_fn=lambda message: progress(0.0, desc=message))
        md, rejected, near = report_view(rep.to_dict(), sources)
        return {**refresh(ui, user_of(request), rep.dataset_id), ui.report: md, ui.next_btn: gr.Button(visible=True),
                ui.rejected: tiles(rejected), ui.near: tiles(near),
                ui.message: ok_text(f"Imported {rep.accepted:,} images (of {rep.total:,} files) as “{rep.name}”.")}

    @safe(ui.message, errors)
    def use_sample_dataset(sample, request: gr.Request, progress=gr.Progress()):
        user, chosen = user_of(request), sample_dataset(sample or DEMO_SAMPLE)
        if any(d["name"] == chosen.name for d in ds_core.list_datasets(user)):
            return {**refresh(ui, user), ui.message: ok_text(f"“{chosen.name}” is already here.")}
        rep = ds_core.import_dataset([str(chosen.path)], chosen.name, user=user,
                                     progress_fn=lambda d, t: progress((d, t), desc="Importing the sample"),
                                     wait_fn=lambda message: progress(0.0, desc=message))
        return {**refresh(ui, user, rep.dataset_id), ui.next_btn: gr.Button(visible=True),
                ui.message: ok_text(f"Added “{chosen.name}”: {rep.accepted:,} images of {chosen.what} to try.")}

    @safe(ui.list_message, errors)
    def ask_delete(dataset, request: gr.Request):
        d = ds_core.get_dataset(dataset or "", user_of(request))
        text = (f"**Delete “{md_escape(d['name'])}”?** Its {d['count']:,} images ({d['size']}) will be lost; "
                "experiments already trained from it keep their snapshots.")
        return {ui.confirm: gr.Group(visible=True), ui.confirm_md: text, ui.list_message: ""}

    @safe(ui.list_message, errors)
    def delete_dataset(dataset, request: gr.Request):
        gone = ds_core.delete_dataset(dataset or "", user_of(request))
        return {**refresh(ui, user_of(request)), ui.confirm: gr.Group(visible=False),
                ui.list_message: ok_text(f"Deleted “{gone['name']}” ({gone['count']:,} images).")}

    gr.on([ui.tab.select, nav.demo.load], list_datasets, None, list_outputs, api_name="list_datasets",
          show_progress="hidden")
    preview_inputs = [ui.files, ui.folder, ui.relpaths, ui.crop, ui.mirror, ui.rotate, ui.zoom]
    gr.on([ui.files.upload, ui.files.clear, ui.folder.upload, ui.crop.change, ui.mirror.input, ui.rotate.input,
           ui.zoom.release], preview_crops, preview_inputs, [ui.previews, ui.message, ui.count_md],
          api_name="preview_crops", concurrency_id="io", trigger_mode="always_last")
    ui.import_btn.click(import_uploads, [ui.files, ui.folder, ui.relpaths, ui.name, ui.crop, ui.mirror, ui.rotate,
                                         ui.zoom],
                        [*list_outputs, ui.report, ui.rejected, ui.near, ui.next_btn, ui.message],
                        api_name="import_dataset", concurrency_id="io")
    ui.use_sample.click(use_sample_dataset, ui.sample_choice, [*list_outputs, ui.next_btn, ui.message],
                        api_name="use_sample_dataset", concurrency_id="io")
    ui.pick_folder.click(None, js="() => window.atelierDrop && window.atelierDrop.pickFolder()")
    ui.listing.select(picked, ui.listing_ids, ui.chosen, api_name=False)
    ui.delete_btn.click(ask_delete, ui.chosen, [ui.confirm, ui.confirm_md, ui.list_message], api_name="ask_delete_dataset")
    ui.confirm_yes.click(delete_dataset, ui.chosen, [*list_outputs, ui.confirm], api_name="delete_dataset")
    ui.confirm_no.click(lambda: gr.Group(visible=False), None, ui.confirm, api_name=False)
    ui.next_btn.click(lambda: go_to(NEW), None, nav.tabs, api_name=False)
