"""The whole journey in a real browser (Playwright + Debian Chromium, headless, CPU, tiny model):
upload a folder → create an experiment (4 steps, a snapshot every 2) → watch a snapshot appear →
move the slider → export the video (a playable mp4) → save the model → rename it → generate in
the Playground. Then: other requests are answered while a job trains.

Set ATELIER_SCREENSHOTS=DIR to also save a 1280 px screenshot of each tab (light and dark)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser import CHROME_ARGS, CHROMIUM, WAIT, shot

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
sync_api = pytest.importorskip("playwright.sync_api")
sync_api.expect.set_options(timeout=WAIT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, ATELIER_HOME=str(home), GRADIO_TEMP_DIR=str(tmp / "gradio"), TMPDIR=str(tmp),
               OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), GRADIO_ANALYTICS_ENABLED="False")
    setup = ("import sys; from pathlib import Path; from tests.tiny import write_tiny_checkpoint; "
             "from core.checkpoints import import_checkpoint; "
             "import_checkpoint(write_tiny_checkpoint(Path(sys.argv[1])), name='tiny', user='local')")
    subprocess.run([sys.executable, "-c", setup, str(tmp_path / "tiny.safetensors")], cwd=REPO, env=env, check=True,
                   timeout=180)
    from tests.tiny import write_blob_images
    images = write_blob_images(tmp_path / "my photos", n=10, size=64)
    write_blob_images(images / "more", n=2, size=64, seed=1)          # a subfolder
    port = free_port()
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--device", "cpu"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).read(100)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / "app.log").read_text())
            time.sleep(0.5)
    yield {"url": url, "images": images, "tmp": tmp_path, "log": tmp_path / "app.log"}
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    log.close()




def open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label).click()


DROP_JS = """async (names) => {
    const dt = new DataTransfer();
    for (const [i, name] of names.entries()) {
        const c = document.createElement('canvas'); c.width = 64; c.height = 64;
        const g = c.getContext('2d'); g.fillStyle = '#222'; g.fillRect(0, 0, 64, 64);
        g.fillStyle = `hsl(${i * 90}, 70%, 60%)`; g.beginPath(); g.arc(20 + 8 * i, 32, 14, 0, 7); g.fill();
        const blob = await new Promise((r) => c.toBlob(r, 'image/png'));
        dt.items.add(new File([blob], name, {type: 'image/png'}));
    }
    const zone = document.querySelector('.atelier-drop');
    zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


def check_drop_zone(browser, server) -> None:
    """The custom drop zone hands dropped files to the upload box (a synthetic drop: a real folder
    drag from the file manager cannot be scripted; the folder walk is the same code path per entry)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(WAIT)
    page.goto(server["url"])
    sync_api.expect(page.locator(".atelier-drop")).to_be_visible()
    page.evaluate(DROP_JS, ["a.png", "b.png", "c.png"])
    sync_api.expect(page.get_by_text("3 files ready")).to_be_visible()
    assert '"a.png"' in page.locator("#atelier-relpaths textarea, #atelier-relpaths input").first.input_value()
    page.close()


def test_whole_journey_in_the_browser(server):
    t_start = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.set_default_timeout(WAIT)
        page.goto(server["url"])
        # First visit, nothing stored: the journey in one line, two ways to start.
        sync_api.expect(page.get_by_role("button", name="Use the sample dataset")).to_be_visible()
        shot(page, "1-datasets-first-visit")

        # 1. Upload a folder (with a subfolder) through the folder picker.
        page.locator("#atelier-folder input[type=file]").set_input_files(str(server["images"]))
        sync_api.expect(page.get_by_text("files ready")).to_be_visible()            # crop previews computed
        page.get_by_label("Dataset name").fill("Blobs")
        page.get_by_role("button", name="Import dataset").click()
        sync_api.expect(page.get_by_text("Imported 12 images")).to_be_visible()
        sync_api.expect(page.get_by_text("12 accepted")).to_be_visible()
        shot(page, "1-datasets-report")

        # 2. New experiment: tiny model (first usable card), 4 steps, snapshot every 2.
        open_tab(page, "2 · New experiment")
        sync_api.expect(page.get_by_text("ETA").first).to_be_visible()
        page.get_by_label("Title").fill("Blobs, first try")
        steps = page.get_by_label("Steps (exact)")
        steps.fill("4")
        steps.press("Tab")
        page.get_by_text("Advanced options").click()
        page.get_by_label("Batch (0 = automatic)").fill("4")
        page.get_by_label("Snapshot every N steps").fill("2")
        page.get_by_label("Snapshot every N steps").press("Tab")
        sync_api.expect(page.get_by_text("(batch 4)")).to_be_visible()         # the ETA follows the options
        shot(page, "2-new-experiment")
        page.get_by_role("button", name="Start training").click()

        # 3. The Experiments tab opens on it; snapshots appear; the slider scrubs.
        sync_api.expect(page.locator("#atelier-grid img")).to_be_visible()
        sync_api.expect(page.locator(".atelier-exps").get_by_text("finished")).to_be_visible()
        sync_api.expect(page.get_by_text("3 snapshots in all")).to_be_visible()
        number = page.locator("#atelier-snapshot input[type=number]")
        number.fill("2")
        number.press("Enter")
        sync_api.expect(page.get_by_text("Step 2 ·")).to_be_visible()
        shot(page, "3-experiments")

        # Export the progress video: a playable mp4 comes back.
        page.get_by_role("button", name="Export progress video (mp4)").click()
        link = page.locator("#atelier-video a").first
        sync_api.expect(link).to_be_visible()
        with page.expect_download() as dl:
            link.click()
        mp4 = server["tmp"] / "progress.mp4"
        dl.value.save_as(mp4)
        import imageio
        reader = imageio.get_reader(mp4)
        assert reader.get_data(0).ndim == 3 and reader.count_frames() >= 3
        reader.close()

        # 4. Save to My Models, rename it there.
        page.get_by_label("Name for My Models").fill("Blobs v1")
        page.get_by_role("button", name="Save this snapshot to My Models").click()
        sync_api.expect(page.get_by_text("Saved “Blobs v1” (step 2)")).to_be_visible()
        page.get_by_role("button", name="Open My Models →").click()
        rename = page.locator("#atelier-rename textarea, #atelier-rename input").first
        sync_api.expect(rename).to_have_value("Blobs v1")
        rename.fill("Blobs final")
        page.get_by_role("button", name="Rename", exact=True).click()
        sync_api.expect(page.get_by_text("Renamed to “Blobs final”")).to_be_visible()
        shot(page, "4-my-models")

        # 5. Playground: the model opens there and renders.
        page.get_by_role("button", name="Open in Playground →").click()
        sync_api.expect(page.locator("#atelier-pg-image img")).to_be_visible()
        page.get_by_role("button", name="Show 16 seeds").click()
        sync_api.expect(page.get_by_text("seed 15")).to_be_attached()
        shot(page, "5-playground")
        journey_s = time.monotonic() - t_start

        if os.environ.get("ATELIER_SCREENSHOTS"):
            dark = browser.new_page(viewport={"width": 1280, "height": 900})
            dark.goto(server["url"] + "?__theme=dark")
            sync_api.expect(dark.get_by_text("Your datasets")).to_be_visible()
            shot(dark, "1-datasets-dark")
            open_tab(dark, "3 · Experiments")
            sync_api.expect(dark.locator("#atelier-grid img")).to_be_visible()
            shot(dark, "3-experiments-dark")
        check_drop_zone(browser, server)
        browser.close()

    # While a longer job trains, another request answers quickly.
    from gradio_client import Client
    client = Client(server["url"], verbose=False)
    form = client.predict(None, None, api_name="/new_experiment_form")
    ds_id = next(x["value"] for x in form if isinstance(x, dict) and "choices" in x)
    out = client.predict("Long", ds_id, "tiny", "center", 2000, 4, 500, "none", False, 0, 0, 0,
                         api_name="/start_experiment")
    exp_id = next(x["value"] for x in out if isinstance(x, dict) and "choices" in x)
    deadline = time.monotonic() + 120
    while "training" not in str(client.predict(exp_id, api_name="/list_experiments")):
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(1)
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        listed = client.predict(api_name="/list_datasets")
        times.append(time.monotonic() - t0)
        assert "Blobs" in str(listed)                                     # answered, with the right content
        time.sleep(0.3)
    assert "training" in str(client.predict(exp_id, api_name="/list_experiments"))  # ... while the job trained
    client.predict(exp_id, api_name="/stop_experiment")
    print(f"\njourney {journey_s:.0f} s; /list_datasets while training: "   # speed: bench/responsiveness.py
          f"median {sorted(times)[2]:.2f} s, max {max(times):.2f} s")
