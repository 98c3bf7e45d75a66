"""My Models tab: cards, and an overview of one (grid, provenance, rename, public/private,
download, delete with confirmation, open in the Playground)."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core import models as models_core
from core.playground import model_key
from .common import (EXPERIMENTS, PLAYGROUND, Nav, download_name, go_to, md_escape, ok_text, open_again, picked, safe,
                     served, user_of, when)

ERRORS = (models_core.ModelError,)


@dataclass
class ModelsUI:
    tab: gr.Tab
    empty: gr.Group
    empty_btn: gr.Button
    cards: gr.Gallery
    card_ids: gr.State
    chosen: gr.Dropdown
    overview: gr.Column
    grid: gr.Image
    provenance: gr.Markdown
    new_name: gr.Textbox
    rename_btn: gr.Button
    public: gr.Checkbox
    download: gr.DownloadButton
    to_playground: gr.Button
    delete_btn: gr.Button
    confirm: gr.Group
    confirm_md: gr.Markdown
    confirm_yes: gr.Button
    confirm_no: gr.Button
    message: gr.Markdown


PUBLIC_MINE = "Public: every signed-in user can use it (only you can change it)"
PUBLIC_SHARED = "Public: shared by its owner (only they can rename, unshare or delete it)"


def build_models() -> ModelsUI:
    with gr.Tab("4 · My Models", id="models") as tab:
        with gr.Group(visible=False, elem_classes=["atelier-empty"]) as empty:
            gr.Markdown("**No models yet.** Open an experiment, pick a snapshot you like and press "
                        "“Save this snapshot to My Models”.")
            empty_btn = gr.Button("Go to Experiments", variant="primary")
        cards = gr.Gallery(fit_columns=False, elem_classes=["atelier-pixel"], label="Your models and public ones (click a card)", columns=5, height=260,
                           object_fit="contain", allow_preview=False)
        card_ids = gr.State([])   # the model ids of the cards, in the order drawn
        chosen = gr.Dropdown(label="Model", choices=[], allow_custom_value=True, elem_id="atelier-model-pick")
        with gr.Column(visible=False) as overview:
            with gr.Row(equal_height=False):
                grid = gr.Image(label="Samples", height=420, interactive=False, scale=3, elem_id="atelier-model-grid")
                with gr.Column(scale=2):
                    provenance = gr.Markdown()
                    with gr.Row():
                        new_name = gr.Textbox(label="Rename", max_length=80, scale=3, elem_id="atelier-rename")
                        rename_btn = gr.Button("Rename", scale=1)
                    public = gr.Checkbox(label=PUBLIC_MINE)
                    download = gr.DownloadButton("Download the model (.safetensors)")
                    to_playground = gr.Button("Open in Playground →", variant="primary")
                    delete_btn = gr.Button("Delete…", variant="stop")
                    with gr.Group(visible=False) as confirm:
                        confirm_md = gr.Markdown()
                        with gr.Row():
                            confirm_yes = gr.Button("Yes, delete it", variant="stop")
                            confirm_no = gr.Button("Cancel")
                    message = gr.Markdown(elem_classes=["atelier-msg"])
    return ModelsUI(**{k: v for k, v in locals().items() if k in ModelsUI.__dataclass_fields__})


# ---- views -------------------------------------------------------------------------------------

def caption(m: dict) -> str:
    """The card's line; someone else's public model has no dataset to show (core leaves it out)."""
    who = "" if m["mine"] else f" · by {m['owner']}"
    dataset = f" · {m.get('dataset') or '?'}" if m["mine"] else ""
    return (f"{m['name']} · {m.get('resolution') or '?'} px{dataset} · "
            f"{(m.get('step') or 0):,} steps · {'public' if m.get('public') else 'private'}{who}")


def download_view(model_id: str, user: str) -> gr.DownloadButton:
    """The file the user may download (for others: a copy without private metadata) under the
    model's current name; served() hard-links it, so a selection costs no copy."""
    path, name = models_core.download_path(model_id, user)
    return gr.DownloadButton(value=served(path, name))


def provenance_view(m: dict) -> str:
    """The owner's model: every row. Someone else's: the rows core let through (no dataset, experiment,
    or imported base model)."""
    rows = [("Resolution", f"{m.get('resolution') or '?'} px"), ("Base model", m.get("base_model")),
            ("Dataset", m.get("dataset")), ("Trained", f"{(m.get('step') or 0):,} steps"),
            ("Experiment", m.get("experiment")), ("Saved", when(m.get("created"))),
            ("Owner", m["owner"]), ("Size", f"{(m.get('bytes') or 0) / 1e6:,.1f} MB")]
    if not m["mine"]:
        hidden = {"Base model": "base_model", "Dataset": "dataset", "Experiment": "experiment"}
        rows = [(k, v) for k, v in rows if k not in hidden or hidden[k] in m]
    lines = "\n".join(f"- **{k}:** {md_escape(v) if v else '—'}" for k, v in rows)
    return f"### {md_escape(m['name'])}\n\n{lines}"


def list_view(ui: ModelsUI, items: list[dict], chosen: str | None) -> dict:
    ids = [m["id"] for m in items]
    value = chosen if chosen in ids else (ids[0] if ids else None)
    return {ui.empty: gr.Group(visible=not items), ui.cards: [(served(m["grid_path"]), caption(m)) for m in items],
            ui.card_ids: ids, ui.chosen: gr.Dropdown(choices=[(caption(m), m["id"]) for m in items], value=value),
            ui.overview: gr.Column(visible=bool(items))}


def overview_view(ui: ModelsUI, m: dict) -> dict:
    """Everything for the owner; for someone else's public model, what they may do with it only."""
    mine = m["mine"]
    about = provenance_view(m)
    if not mine:
        about += (f"\n\nShared by **{md_escape(m['owner'])}**: you can download it and use it in the "
                  "Playground.")
    return {ui.overview: gr.Column(visible=True), ui.grid: served(m["grid_path"]), ui.provenance: about,
            ui.new_name: gr.Textbox(value=m["name"], interactive=mine, visible=mine),
            ui.rename_btn: gr.Button(interactive=mine, visible=mine),
            ui.public: gr.Checkbox(value=bool(m.get("public")), interactive=mine,
                                   label=PUBLIC_MINE if mine else PUBLIC_SHARED),
            ui.delete_btn: gr.Button(interactive=mine, visible=mine), ui.confirm: gr.Group(visible=False),
            ui.message: ""}


# ---- wiring ------------------------------------------------------------------------------------

def wire_models(ui: ModelsUI, nav: Nav) -> None:
    list_outs = [ui.empty, ui.cards, ui.card_ids, ui.chosen, ui.overview, ui.message]
    view_outs = [ui.overview, ui.grid, ui.provenance, ui.new_name, ui.rename_btn, ui.public, ui.delete_btn,
                 ui.confirm, ui.message]

    @safe(ui.message, ERRORS)
    def list_models(chosen, request: gr.Request):
        return list_view(ui, models_core.list_models(user_of(request)), chosen)

    @safe(ui.message, ERRORS)
    def show_model(model_id, request: gr.Request):
        if not model_id:
            return {ui.overview: gr.Column(visible=False)}
        return overview_view(ui, models_core.get_model(model_id, user_of(request)))

    @safe(ui.message, ERRORS)
    def rename_model(model_id, name, request: gr.Request):
        m = models_core.rename_model(model_id or "", user_of(request), name)
        return {**list_view(ui, models_core.list_models(user_of(request)), m["id"]), ui.download: download_view(m["id"], user_of(request)),
                ui.provenance: provenance_view(m), ui.message: ok_text(f"Renamed to “{m['name']}”.")}

    @safe(ui.message, ERRORS)
    def set_public(model_id, public, request: gr.Request):
        m = models_core.set_public(model_id or "", user_of(request), bool(public))
        return {**list_view(ui, models_core.list_models(user_of(request)), m["id"]),
                ui.message: ok_text("Public: every signed-in user can now use it." if m["public"]
                                    else "Private: only you can see it.")}

    @safe(ui.message, ERRORS)
    def download_model(model_id, request: gr.Request):
        return {ui.download: download_view(model_id or "", user_of(request)), ui.message: ""}

    @safe(ui.message, ERRORS)
    def ask_delete(model_id, request: gr.Request):
        m = models_core.get_model(model_id or "", user_of(request))
        if not m["mine"]:  # someone else's public model: readable, never deletable
            raise models_core.ModelNotOwner("Only the owner can change this model")
        text = (f"**Delete “{md_escape(m['name'])}”?** Its file will be gone; the experiment stays, "
                "so you can save the snapshot again.")
        return {ui.confirm: gr.Group(visible=True), ui.confirm_md: text}

    @safe(ui.message, ERRORS)
    def delete_model(model_id, request: gr.Request):
        models_core.delete_model(model_id or "", user_of(request))
        return {**list_view(ui, models_core.list_models(user_of(request)), None), ui.confirm: gr.Group(visible=False),
                ui.message: ok_text("Deleted.")}

    @safe(ui.message, ERRORS)
    def open_in_playground(model_id, request: gr.Request):  # the Playground opens it (nav.open_model)
        m = models_core.get_model(model_id or "", user_of(request))
        return {nav.tabs: go_to(PLAYGROUND), nav.open_model: open_again(model_key(m["id"])), ui.message: ""}

    quiet = dict(show_progress="hidden")
    gr.on([ui.tab.select, nav.demo.load], list_models, ui.chosen, list_outs, api_name="list_models", **quiet)
    ui.chosen.change(show_model, ui.chosen, view_outs, api_name="show_model", **quiet)
    ui.chosen.change(download_model, ui.chosen, [ui.download, ui.message], api_name="download_model", **quiet)
    ui.cards.select(picked, ui.card_ids, ui.chosen, api_name=False)
    ui.empty_btn.click(lambda: go_to(EXPERIMENTS), None, nav.tabs, api_name=False)
    ui.rename_btn.click(rename_model, [ui.chosen, ui.new_name], [*list_outs, ui.provenance, ui.download],
                        api_name="rename_model")
    ui.new_name.submit(rename_model, [ui.chosen, ui.new_name], [*list_outs, ui.provenance, ui.download], api_name=False)
    ui.public.input(set_public, [ui.chosen, ui.public], list_outs, api_name="set_model_public")
    ui.delete_btn.click(ask_delete, ui.chosen, [ui.confirm, ui.confirm_md, ui.message], api_name="ask_delete_model")
    ui.confirm_yes.click(delete_model, ui.chosen, [*list_outs, ui.confirm], api_name="delete_model")
    ui.confirm_no.click(lambda: gr.Group(visible=False), None, ui.confirm, api_name=False)
    ui.to_playground.click(open_in_playground, ui.chosen, [nav.tabs, nav.open_model, ui.message], api_name=False)
