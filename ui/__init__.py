"""The Gradio UI: one module per tab (build_<tab>() -> dataclass of components, wire_<tab>()).
``build_ui()`` builds every tab, then wires every tab. No torch and no ML logic here."""
from __future__ import annotations

import gradio as gr

from .common import DATASETS, build_nav
from .datasets import build_datasets, wire_datasets
from .experiments import build_experiments, wire_experiments
from .models import build_models, wire_models
from .new_experiment import build_new_experiment, wire_new_experiment
from .playground import build_playground, wire_playground

TITLE = "Atelier"


def build_ui() -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=(3600, 24 * 3600)) as demo:  # Gradio's copies: a day
        gr.Markdown("## Atelier · train image generators on your own pictures", elem_id="atelier-title")
        with gr.Tabs(selected=DATASETS, elem_id="atelier-tabs") as tabs:
            datasets = build_datasets()
            new = build_new_experiment()
            experiments = build_experiments()
            models = build_models()
            playground = build_playground()
        nav = build_nav(tabs, demo)
        wire_datasets(datasets, nav)
        wire_new_experiment(new, nav)
        wire_experiments(experiments, nav)
        wire_models(models, nav)
        wire_playground(playground, nav)
        # The live view polls only while the Experiments tab is shown.
        experiments.tab.select(lambda: gr.Timer(active=True), None, experiments.timer, api_name=False)
        for tab in (datasets.tab, new.tab, models.tab, playground.tab):
            tab.select(lambda: gr.Timer(active=False), None, experiments.timer, api_name=False)
    return demo
