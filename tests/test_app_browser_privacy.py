"""Issue 8 in a real browser: with ``--auth``, bob signs in and walks every tab: none of alice's private
items is listed or offered anywhere, her public model is; the pictures alice's page shows are not
served to bob's session (404) while they load for her. Chromium, headless, CPU."""
from __future__ import annotations

import pytest

from tests.browser import CHROME_ARGS, CHROMIUM, NO_CHROMIUM, WAIT, shot
from tests.privacy_fixtures import ALICE, BOB, CK_NAME, DS_NAME, EXP_TITLE, PRIV_NAME, PUB_NAME, two_user_server

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


def sign_in(browser, url: str, who: tuple[str, str]):
    """A fresh browser context (its own cookies) signed in through Gradio's login page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    page.goto(url)
    page.get_by_label("username").fill(who[0])
    page.get_by_label("password").fill(who[1])
    page.get_by_role("button", name="Login").click()
    expect(page.get_by_role("tab", name="1 · Datasets")).to_be_visible(timeout=WAIT)
    return page




def options(page, elem_id: str) -> str:
    """The text of a dropdown's options (opened, read, closed); empty when the dropdown is hidden."""
    box = page.locator(f"#{elem_id} input").first
    if not box.is_visible():
        return ""
    box.click()
    page.wait_for_timeout(300)
    text = page.locator("ul[role=listbox]").first.inner_text() if page.locator("ul[role=listbox]").count() else ""
    box.press("Escape")
    return text


def loaded_image_urls(page, selector: str) -> list[str]:
    """The src of every picture under ``selector`` that the browser actually decoded."""
    return page.eval_on_selector_all(
        f"{selector} img", "els => els.filter(e => e.complete && e.naturalWidth > 0 && e.src.includes('/file='))"
                           ".map(e => e.src)")


def test_bob_sees_nothing_private_of_alice_in_the_browser(tmp_path):
    with two_user_server(tmp_path) as srv, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)

        alice = sign_in(browser, srv["url"], ALICE)
        expect(alice.get_by_text(DS_NAME).first).to_be_attached()
        alice.get_by_role("tab", name="4 · My Models").click()
        expect(alice.get_by_text(PRIV_NAME).first).to_be_attached()
        alice.locator("#atelier-model-pick input").first.fill(PRIV_NAME)
        alice.locator("#atelier-model-pick input").first.press("Enter")
        expect(alice.locator("#atelier-model-grid img")).to_be_visible()           # her private model's samples
        alice.wait_for_timeout(1000)
        alices_pictures = set(loaded_image_urls(alice, "body"))
        assert len(alices_pictures) >= 2, alices_pictures                           # cards and samples

        bob = sign_in(browser, srv["url"], BOB)
        page_text = lambda: bob.locator("body").inner_text()  # noqa: E731
        expect(bob.get_by_role("button", name="Use the sample dataset")).to_be_visible()  # his empty Datasets tab
        assert DS_NAME not in page_text()
        bob.get_by_role("tab", name="2 · New experiment").click()
        expect(bob.get_by_text("An experiment needs a dataset first")).to_be_visible()  # none of his own yet
        bob.wait_for_timeout(1500)
        hidden_too = bob.locator("body").text_content()
        assert DS_NAME not in hidden_too and CK_NAME not in hidden_too
        bob.get_by_role("tab", name="3 · Experiments").click()
        bob.wait_for_timeout(1500)
        assert EXP_TITLE not in page_text()
        assert EXP_TITLE not in options(bob, "atelier-exp-pick")
        bob.get_by_role("tab", name="4 · My Models").click()
        expect(bob.get_by_text(PUB_NAME).first).to_be_attached()                   # public: listed for him
        assert PRIV_NAME not in page_text()
        assert PRIV_NAME not in options(bob, "atelier-model-pick")
        bob.locator("#atelier-model-pick input").first.fill(PUB_NAME)
        bob.locator("#atelier-model-pick input").first.press("Enter")
        expect(bob.locator("#atelier-model-grid img")).to_be_visible()
        shot(bob, "privacy-bob-my-models")
        bob.get_by_role("tab", name="5 · Playground").click()
        pg_models = options(bob, "atelier-pg-model")
        assert PUB_NAME in pg_models and PRIV_NAME not in pg_models, pg_models

        # The pictures alice's browser decoded, asked for by bob's session: those bob's own page was
        # handed (her public model's card: the same bytes, so the same URL) load; no other does.
        bob.get_by_role("tab", name="4 · My Models").click()
        bob.wait_for_timeout(1000)
        bobs_pictures = set(loaded_image_urls(bob, "body"))
        hers_only = alices_pictures - bobs_pictures
        assert hers_only, (alices_pictures, bobs_pictures)
        for url in alices_pictures:
            assert alice.request.get(url).status == 200, url
            assert bob.request.get(url).status == (404 if url in hers_only else 200), url
        browser.close()
