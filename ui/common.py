"""What every tab shares: the signed-in user, errors as one sentence, files the browser may fetch,
tab navigation and number formatting. No torch here (the UI never imports it)."""
from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from core.jobs.eta import human_duration
from core.storage import DEFAULT_USER, download_name  # noqa: F401 (used by the tabs)

log = logging.getLogger("atelier.ui")

GENERIC_ERROR = "Something went wrong on our side; the details are in the server log."

# Tab ids, in the order of the work (gr.Tabs(selected=...) takes them).
DATASETS, NEW, EXPERIMENTS, MODELS, PLAYGROUND = "datasets", "new", "experiments", "models", "playground"
# The crop modes (core.datasets.CROP_MODES) a person chooses from, as the page names them.
CROP_CHOICES = [("Center", "center"), ("Random", "random"), ("No crop (stretch)", "none")]


@dataclass
class Nav:
    """What the tabs share, so that no tab writes another's components: the tab strip (any tab may
    open another one), the app (for its load event), and requests to open an item in its own tab:
    a tab writes the item's id (``open_item``) into the request here, and the tab that shows such
    items listens to the request's change and opens the item itself."""
    tabs: gr.Tabs
    demo: gr.Blocks
    open_experiment: gr.Dropdown   # hidden; an API client reads the new experiment's id from it (each is new)
    open_model: gr.State           # {"key", "at"}: the Playground opens the model (the same one again too)


def build_nav(tabs: gr.Tabs, demo: gr.Blocks) -> Nav:
    return Nav(tabs=tabs, demo=demo, open_experiment=gr.Dropdown(choices=[], visible=False, allow_custom_value=True,
                                                                 label="Experiment to open"),
               open_model=gr.State(None))


def open_item(item_id: str) -> gr.Dropdown:
    """The update of ``Nav.open_experiment`` that asks for ``item_id``."""
    return gr.Dropdown(choices=[item_id], value=item_id)


def open_again(key: str) -> dict:
    """The value of a Nav state that asks for ``key``: asking again for the same one is a change too."""
    return {"key": key, "at": time.time()}


def user_of(request: gr.Request | None) -> str:
    """The signed-in user, from the request only (never a client field)."""
    return (getattr(request, "username", None) or DEFAULT_USER) if request is not None else DEFAULT_USER


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&$~|#])")


def md_escape(text) -> str:
    """Text shown as itself in a Markdown component: the marks that make emphasis, code, links,
    HTML, maths, strike-through, tables or headings are backslash-escaped, so a name typed by a
    user is never bold, a link or HTML (``<img src=x>`` stays text), and a backslash in a message
    stays visible. Other punctuation is left as is (API clients read these strings too)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def error_text(message: str) -> str:
    """A one-line refusal for a Markdown message component (the text is escaped: never markup)."""
    return f"⚠ {md_escape(message)}" if message else ""


def ok_text(message: str) -> str:
    return f"✓ {md_escape(message)}" if message else ""


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text.strip("'\"")[:300]


def safe(message_component, expected: tuple = ()):
    """Handler decorator: expected core errors become one sentence in ``message_component``;
    anything else is logged and becomes a generic sentence. Never a traceback in the page."""
    def wrap(fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(*args, **kwargs):
                try:
                    yield from fn(*args, **kwargs)
                except expected as e:
                    yield {message_component: error_text(one_line(e))}
                except gr.Error:
                    raise
                except Exception:  # noqa: BLE001
                    log.exception("handler %s failed", fn.__name__)
                    yield {message_component: error_text(GENERIC_ERROR)}
            return gen

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except expected as e:
                return {message_component: error_text(one_line(e))}
            except gr.Error:
                raise
            except Exception:  # noqa: BLE001 - the page gets a sentence, the log the traceback
                log.exception("handler %s failed", fn.__name__)
                return {message_component: error_text(GENERIC_ERROR)}
        return inner
    return wrap


# ---- files the browser may fetch -------------------------------------------------------------
# The data root is never in allowed_paths: a file leaves it only as a component value, after the
# handler checked ownership. Gradio copies values from the temp dir into its cache.

SERVE_KEEP_S = 24 * 3600
_last_sweep = [0.0]


def serve_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "atelier-serve"
    path.mkdir(parents=True, exist_ok=True)
    if time.time() - _last_sweep[0] > 3600:  # hourly: drop what was handed out more than a day ago
        _last_sweep[0] = time.time()
        for old in path.iterdir():
            try:
                if time.time() - old.stat().st_mtime > SERVE_KEEP_S:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                continue
    return path


def served(path: str | os.PathLike | None, name: str | None = None) -> str | None:
    """A copy (hard link where possible) of ``path`` in the temp dir, for a component value."""
    if not path:
        return None
    src = Path(path)
    if not src.is_file():
        return None
    dest = serve_dir() / uuid.uuid4().hex[:12] / (name or src.name)
    dest.parent.mkdir(parents=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    return str(dest)


def scratch_dir() -> Path:
    """A fresh folder in the temp dir for files a handler writes (videos, exports)."""
    return Path(tempfile.mkdtemp(prefix="out-", dir=serve_dir()))


# ---- numbers a user reads --------------------------------------------------------------------

duration = human_duration


def when(ts) -> str:
    if not ts:
        return ""
    if isinstance(ts, str):
        return ts.replace("T", " ")[:16]
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts)))


class TypedSlider(gr.Slider):
    """A slider (with its number box) whose value reaches the handler as typed, even out of range:
    the handler's core call says in one sentence what is wrong, near the control, instead of
    Gradio's own refusal (a toast per listening event and an "Error" badge). On leaving the box the
    browser clamps the value into the slider's range, so the box and the slider show the same."""
    is_template = True   # rendered by Gradio's own slider

    def preprocess(self, payload):
        return payload


def go_to(tab_id: str) -> gr.Tabs:
    return gr.Tabs(selected=tab_id)


def picked(ids: list, evt: gr.SelectData) -> gr.Dropdown:
    """A gallery click as a dropdown choice: the id of the card clicked, from the ids drawn with the
    cards (a gr.State written with the gallery), never from a list read again since it was drawn."""
    ok = isinstance(ids, list) and isinstance(evt.index, int) and 0 <= evt.index < len(ids)
    return gr.Dropdown(value=ids[evt.index]) if ok else gr.Dropdown()


def empty_state(text: str, button_label: str, visible: bool = False) -> tuple[gr.Group, gr.Markdown, gr.Button]:
    """A short 'what to do next' line with a button that goes there (wired by the caller)."""
    with gr.Group(visible=visible, elem_classes=["atelier-empty"]) as group:
        md = gr.Markdown(text)
        btn = gr.Button(button_label, variant="primary", size="md")
    return group, md, btn
