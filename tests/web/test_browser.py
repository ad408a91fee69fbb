"""End to end in Debian's Chromium: a new user colorizes a few photos, as a person would."""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from gallery import services

from .helpers import image_bytes, wait_until_finished

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


def test_steering_the_colours_with_vividness_and_hints(alice, page, artifacts, monkeypatch):
    # Playwright's sync API keeps an event loop in this thread, which makes Django refuse database
    # calls from it; nothing runs concurrently here, so they are safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    photo = services.upload_photo(alice, SimpleUploadedFile("attic.png", image_bytes("PNG", size=(640, 480))))
    wait_until_finished([photo.jobs.get().id])
    page.goto(f"/photos/{photo.id}/")
    page.locator("#id_username").fill("alice")
    page.locator("#id_password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    adjust = page.locator("[data-adjust]")
    expect(adjust.locator("canvas[data-role=preview]")).to_be_visible()
    expect(page.locator("[data-role=result-settings]")).to_have_text("Shown: vividness 1× · 0 colour hints")

    # Vividness: the preview changes at once, in the browser.
    before = canvas_pixels(page)
    adjust.locator("input[name=vividness]").fill("1.6")
    expect(adjust.locator("[data-role=vividness-value]")).to_have_text("1.60×")
    assert canvas_pixels(page) != before

    # Two hints, clicked onto the photo (shown at some size: positions are fractions of it).
    stage = adjust.locator("[data-role=stage]")
    box = stage.bounding_box()
    stage.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.25})
    markers = adjust.locator(".hint-marker")
    expect(markers).to_have_count(1)
    adjust.locator("[data-role=hint-color]").fill("#3a5fcd")
    stage.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.5})
    expect(markers).to_have_count(2)
    # The second takes a colour the model proposes for its point.
    swatches = adjust.locator("[data-role=swatches] .swatch")
    expect(swatches).to_have_count(6)
    proposed = swatches.first.get_attribute("data-color")
    swatches.first.click()
    expect(markers.nth(1)).to_have_attribute("aria-label", re.compile(f"^Colour hint 2: {proposed} at "))
    # A third, removed again; the first, dragged elsewhere.
    stage.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.9})
    expect(markers).to_have_count(3)
    adjust.get_by_role("button", name="Remove this hint").click()
    expect(markers).to_have_count(2)
    box = stage.bounding_box()  # in the viewport: clicking may have scrolled the page
    first = markers.first.bounding_box()
    page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.8, steps=5)
    page.mouse.up()
    page.screenshot(path=artifacts / "5-hints.png")

    # The page the form leads to says what was queued. It is read from the response: when the job
    # finishes first, the page reloads itself to show the result and the one-off message is gone.
    with page.expect_response(lambda r: r.request.method == "GET" and r.url.endswith(f"/photos/{photo.id}/")) as shown:
        adjust.get_by_role("button", name="Apply").click()
    assert "attic.png is queued to be colorized again (vividness 1.6× · 2 colour hints)." in shown.value.text()
    # The page follows the job and shows its result with the settings it was made with.
    expect(page.locator("[data-role=result-settings]")).to_have_text("Shown: vividness 1.6× · 2 colour hints")
    page.screenshot(path=artifacts / "6-applied.png")
    job = photo.jobs.order_by("-queued_at").first()
    assert (job.state, job.vividness) == ("succeeded", 1.6)
    [moved, picked] = job.hints
    assert moved["color"] == "#3a5fcd" and picked["color"] == proposed
    assert abs(moved["x"] - 64) <= 8 and abs(moved["y"] - 384) <= 8  # where it was dragged to
    assert abs(picked["x"] - 480) <= 8 and abs(picked["y"] - 240) <= 8

    # Reopened, the photo has its hints and vividness back, ready to change.
    page.reload()
    expect(markers).to_have_count(2)
    expect(markers.first).to_have_attribute("aria-label", f"Colour hint 1: #3a5fcd at {moved['x']}, {moved['y']}")
    expect(adjust.locator("input[name=vividness]")).to_have_value("1.6")

    # A hint being placed when the page reloads itself (as when a job finishes) is kept.
    stage.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.5})
    expect(markers).to_have_count(3)
    with page.expect_navigation():
        page.evaluate("document.dispatchEvent(new Event('colorizer:reload')); location.reload()")
    expect(markers).to_have_count(3)
    page.reload()  # once only: then the job's own settings again
    expect(markers).to_have_count(2)


def canvas_pixels(page):
    return page.evaluate("""() => {
        const canvas = document.querySelector("[data-role=preview]");
        return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data.slice(0, 4000));
    }""")
