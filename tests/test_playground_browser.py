"""The Playground in a real browser (Playwright + Debian Chromium, the bundled 64 px model, CPU):
typed ψ and direction strengths re-render (Enter, as releasing a slider does) -> upload a photo and
start a long projection, stop it -> project a sample-dataset photo picked from the dataset (a short
run; 24 sample images are imported before the app starts) -> edit it with a typed strength -> keep
it as a vector -> a keyframe walk through it -> the mp4.

Set ATELIER_SCREENSHOTS=DIR to also save screenshots (the projection then runs 500 steps, so that
the picture shows what a user gets)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app_server import app_server
from tests.browser import CHROME_ARGS, CHROMIUM, NO_CHROMIUM, WAIT, shot

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
expect.set_options(timeout=WAIT)


@pytest.fixture
def server(tmp_path):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, ATELIER_HOME=str(home), GRADIO_TEMP_DIR=str(tmp / "gradio"), TMPDIR=str(tmp),
               PYTHONPATH=str(REPO), GRADIO_ANALYTICS_ENABLED="False")
    setup = ("import sys; from pathlib import Path; from core.sample_data import sample_dataset; "
             "from core.datasets import import_dataset; "
             "import_dataset([str(sample_dataset('emoji-animals').path)], 'Sample emoji animals')")
    subprocess.run([sys.executable, "-c", setup, str(tmp_path / "sample")], cwd=REPO, env=env, check=True, timeout=300)
    with app_server(["--no-worker"], env, tmp_path / "app.log") as url:
        yield {"url": url, "tmp": tmp_path}


def photo(path: Path) -> Path:
    """A 'photo': a warm disc on a dusky ground, wider than tall (so the square crop matters)."""
    import numpy as np
    from PIL import Image
    yy, xx = np.mgrid[0:90, 0:120]
    img = np.zeros((90, 120, 3), np.uint8)
    img[:] = (60, 70, 90)
    img[(yy - 45) ** 2 + (xx - 60) ** 2 < 25 ** 2] = (230, 120, 200)
    Image.fromarray(img).save(path)
    return path


def changes(page, selector: str, action) -> None:
    """Run ``action`` and wait until the image in ``selector`` is another one."""
    before = page.locator(f"{selector} img").first.get_attribute("src")
    action()
    page.wait_for_function("([sel, b]) => { const i = document.querySelector(sel + ' img'); return i && i.src !== b; }",
                           arg=[selector, before], timeout=WAIT)


def type_number(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Enter")


def test_projection_edit_keep_and_walk(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(WAIT)
        page.goto(server["url"])
        page.get_by_role("tab", name="5 · Playground").click()
        expect(page.locator("#atelier-pg-image img")).to_be_visible()

        # Typed values render like a released slider: ψ, then a direction strength.
        changes(page, "#atelier-pg-image", lambda: type_number(page, "atelier-pg-psi", "0.4"))
        changes(page, "#atelier-pg-image", lambda: type_number(page, "atelier-pg-dir0", "5"))
        type_number(page, "atelier-pg-dir0", "0")

        # Your photo: upload, a crop preview, a long projection stopped, then a short one.
        page.get_by_text("Your photo in the model").click()
        page.locator("#atelier-pg-photo input[type=file]").set_input_files(str(photo(server["tmp"] / "me.png")))
        expect(page.locator("#atelier-pg-crop img")).to_be_visible()
        type_number(page, "atelier-pg-steps", "2000")
        page.get_by_role("button", name="Find my photo in the model").click()
        expect(page.get_by_text("Step ")).to_be_visible()
        page.get_by_role("button", name="Stop").click()
        expect(page.locator("#atelier-pg-photo-status").get_by_text("Stopped after")).to_be_visible()
        steps = "500" if os.environ.get("ATELIER_SCREENSHOTS") else "40"
        page.get_by_text("Or pick a photo from one of your datasets").click()
        page.locator("#atelier-pg-photo-section").get_by_label("Dataset").click()
        page.get_by_role("option", name="Sample emoji animals").click()
        page.locator("#atelier-pg-photo-section .thumbnail-item").nth(3).click()
        type_number(page, "atelier-pg-steps", steps)
        page.get_by_role("button", name="Find my photo in the model").click()
        expect(page.locator("#atelier-pg-photo-status").get_by_text(f"Done after {steps} steps")).to_be_visible()
        shot(page, "5-playground-projection")
        expect(page.locator("#atelier-pg-source input")).to_have_value(re.compile("^Projected photo"))
        expect(page.locator("#atelier-pg-progress img")).to_be_visible()

        # Edit it with a typed strength, keep it as a vector.
        changes(page, "#atelier-pg-image", lambda: type_number(page, "atelier-pg-dir1", "3"))
        page.locator("#atelier-pg-keep-name input, #atelier-pg-keep-name textarea").first.fill("me, edited")
        page.get_by_role("button", name="Keep", exact=True).click()
        expect(page.get_by_text("Kept “me, edited” as w")).to_be_visible()

        # A keyframe walk: two seeds and the kept vector, 1 s at 8 fps, looping.
        page.get_by_text("Keyframe walk (video)").click()
        keyframes = page.locator("#atelier-pg-keyframes input").first
        keyframes.click()
        page.get_by_role("option", name="Vector: me, edited (w)").click()
        page.keyboard.press("Escape")
        expect(page.locator("#atelier-pg-keyframes")).to_contain_text("me, edited")
        page.locator("#atelier-pg-walk").get_by_label("Length (s)").fill("1")
        page.locator("#atelier-pg-walk").get_by_label("Frames per second").fill("8")
        page.get_by_role("button", name="Preview frames").click()
        expect(page.locator("#atelier-pg-frames img")).to_have_count(8)          # the walk's 8 frames, all shown
        page.get_by_role("button", name="Render the video").click()
        expect(page.locator("#atelier-pg-walk-msg").get_by_text("It ends where it starts")).to_be_visible()
        src = page.locator("#atelier-pg-video video").first.get_attribute("src")
        assert src and ".mp4" in src, src
        shot(page, "5-playground-walk")
        browser.close()
