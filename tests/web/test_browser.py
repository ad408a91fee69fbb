"""End to end in Debian's Chromium: a new user colorizes a few photos, as a person would."""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from .helpers import image_bytes

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("celery_worker")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page(live_server):
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (make test installs it)")
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
        context.set_default_timeout(60_000)
        yield context.new_page()
        browser.close()


@pytest.fixture
def artifacts():
    # Both passes of `make test` run this test; each keeps its own screenshots.
    folder = settings.BASE_DIR / "test-artifacts" / f"browser-{connection.vendor}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_new_user_colorizes_photos(page, artifacts):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_role("link", name="Create an account").click()
    page.locator("#id_username").fill("grace")
    page.locator("#id_password1").fill("old photos in a shoebox")
    page.locator("#id_password2").fill("old photos in a shoebox")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="No photos yet")).to_be_visible()
    page.screenshot(path=artifacts / "1-empty-gallery.png")

    page.get_by_role("link", name="Upload photos").first.click()
    files = [
        {"name": "attic.png", "mimeType": "image/png", "buffer": image_bytes("PNG", size=(640, 480))},
        {"name": "holiday.jpg", "mimeType": "image/jpeg", "buffer": b"this was never a photo"},
        {"name": "wedding.jpg", "mimeType": "image/jpeg", "buffer": image_bytes("JPEG", size=(360, 520))},
    ]
    page.locator("#file-input").set_input_files(files)
    items = page.locator(".upload-item")
    refused = items.filter(has_text="holiday.jpg")
    expect(refused.locator("[data-role=state]")).to_have_text("Refused")
    expect(refused.locator("[data-role=error]")).to_have_text(
        "holiday.jpg is not an image Pillow can read: cannot identify image file"
    )
    for name in ("attic.png", "wedding.jpg"):
        item = items.filter(has_text=name)
        expect(item.locator("[data-role=state]")).to_have_text("Done")
        expect(item.locator("[data-role=thumb] img")).to_be_visible()
    page.screenshot(path=artifacts / "2-uploaded.png")

    page.get_by_role("link", name="Gallery", exact=True).click()
    cards = page.locator(".card")
    expect(cards).to_have_count(2)
    expect(cards.locator("[data-role=state]")).to_have_text(["Done", "Done"])
    page.screenshot(path=artifacts / "3-gallery.png")

    cards.filter(has_text="attic.png").click()
    compare = page.locator("[data-compare]")
    expect(compare.locator("img.after")).to_be_visible()
    # The slider shows the display-size copies, loaded in full; the buttons below download the
    # full resolution.
    for side in ("img.after", "img.before"):
        assert "preview.jpg" in compare.locator(side).get_attribute("src")
        expect(compare.locator(side)).to_have_js_property("naturalWidth", 640)
    compare.locator("input[type=range]").fill("25")
    assert compare.evaluate("el => el.style.getPropertyValue('--pos')") == "25%"
    page.screenshot(path=artifacts / "4-compare.png")

    for button in ("Download PNG", "Download JPEG"):
        with page.expect_download() as download:
            page.get_by_role("link", name=button).click()
        saved = artifacts / download.value.suggested_filename
        download.value.save_as(saved)
        assert Image.open(saved).size == (640, 480)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
