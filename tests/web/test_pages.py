"""Pages, file downloads and actions through Django's test client: who may see and do what."""

import html
import io
import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gallery import services
from gallery.models import ColorizationJob, Photo

from .helpers import image_bytes, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo(alice, colorizer):
    """Alice's photo, colorized (the job is run here, as the worker would run it)."""
    photo = services.upload_photo(alice, SimpleUploadedFile("grandma.tif", image_bytes("TIFF", size=(90, 60))))
    services.run_job(photo.jobs.get().id)
    return photo


PHOTO_URLS = [
    "/photos/{id}/",
    "/photos/{id}/original",
    "/photos/{id}/original?download=1",
    "/photos/{id}/original.png",
    "/photos/{id}/result.png",
    "/photos/{id}/result.png?download=1",
    "/photos/{id}/result.jpg",
    "/photos/{id}/result.jpg?download=1",
    "/photos/{id}/thumbnail",
    "/photos/{id}/palette.json?x=1&y=1",
    "/photos/{id}/preview.jpg",
    "/photos/{id}/original-preview.jpg",
]
PHOTO_ACTIONS = ["/photos/{id}/colorize", "/photos/{id}/delete"]


@pytest.mark.parametrize("url", PHOTO_URLS)
def test_it_checks_owner(client, photo, alice, bob, url):
    client.force_login(alice)
    assert client.get(url.format(id=photo.id)).status_code == 200

    client.force_login(bob)
    assert client.get(url.format(id=photo.id)).status_code == 404


@pytest.mark.parametrize("url", PHOTO_ACTIONS)
def test_it_checks_owner_of_actions(client, photo, bob, media, url):
    files_before = stored_files(media)
    client.force_login(bob)

    assert client.post(url.format(id=photo.id)).status_code == 404

    assert [job.state for job in photo.jobs.all()] == ["succeeded"]
    assert stored_files(media) == files_before


def test_it_checks_owner_of_states(client, photo, alice, bob):
    client.force_login(bob)
    assert client.get(f"/photos/status.json?ids={photo.id}").json() == {"photos": {}}

    client.force_login(alice)
    status = client.get(f"/photos/status.json?ids={photo.id},not-an-id").json()["photos"][str(photo.id)]
    assert status["state"] == "succeeded" and status["label"] == "Done"


def test_it_checks_owner_in_the_gallery(client, photo, bob):
    client.force_login(bob)

    page = client.get("/").content.decode()

    assert "grandma.tif" not in page and "No photos yet" in page


@pytest.mark.parametrize("url", ["/", "/upload/", "/photos/status.json", *PHOTO_URLS])
def test_every_page_needs_a_session(client, photo, url):
    url = url.format(id=photo.id)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_downloads_are_full_resolution(client, photo, alice):
    client.force_login(alice)

    png = client.get(f"/photos/{photo.id}/result.png?download=1")
    jpeg = client.get(f"/photos/{photo.id}/result.jpg?download=1")
    original = client.get(f"/photos/{photo.id}/original?download=1")

    assert png["Content-Disposition"] == 'attachment; filename="grandma-colorized.png"'
    assert jpeg["Content-Disposition"] == 'attachment; filename="grandma-colorized.jpg"'
    assert original["Content-Disposition"] == 'attachment; filename="grandma.tif"'
    assert Image.open(io.BytesIO(b"".join(png.streaming_content))).size == (90, 60)
    jpeg_bytes = b"".join(jpeg.streaming_content)
    assert Image.open(io.BytesIO(jpeg_bytes)).format == "JPEG"
    assert Image.open(io.BytesIO(jpeg_bytes)).size == (90, 60)
    with photo.original.open("rb") as stored:
        assert b"".join(original.streaming_content) == stored.read()


def test_every_download_gives_the_same_bytes(client, photo, alice):
    # Encoded once (the PNG by the worker, the JPEG on the first request) and stored.
    client.force_login(alice)
    for url in ("/photos/{id}/result.png?download=1", "/photos/{id}/result.jpg?download=1",
                "/photos/{id}/original.png", "/photos/{id}/preview.jpg", "/photos/{id}/original-preview.jpg"):
        first, second = (b"".join(client.get(url.format(id=photo.id)).streaming_content) for _ in range(2))
        assert first == second and len(first) > 100, url


def test_derived_images_are_cached_for_good_under_versioned_urls(client, photo, alice):
    client.force_login(alice)
    job = photo.jobs.get()

    for url in ("preview.jpg", "thumbnail", "result.png", "result.jpg"):
        versioned = client.get(f"/photos/{photo.id}/{url}?v={job.id}")
        latest = client.get(f"/photos/{photo.id}/{url}")
        assert versioned["Cache-Control"] == "private, max-age=31536000, immutable", url
        # Without the version the newest result is served, which changes when colorized again.
        assert latest["Cache-Control"] == "private", url
    for url in ("original-preview.jpg", "original.png"):  # an original never changes
        assert client.get(f"/photos/{photo.id}/{url}")["Cache-Control"] == "private, max-age=31536000, immutable"


def test_the_page_shows_previews_no_larger_than_the_preview_size(client, alice, colorizer, settings):
    big = services.upload_photo(alice, SimpleUploadedFile("big.png", image_bytes("PNG", size=(3000, 1000))))
    services.run_job(big.jobs.get().id)
    client.force_login(alice)

    for url in ("preview.jpg", "original-preview.jpg"):
        preview = Image.open(io.BytesIO(b"".join(client.get(f"/photos/{big.id}/{url}").streaming_content)))
        assert preview.format == "JPEG" and preview.size == (services.PREVIEW_SIZE, 683)
    full = Image.open(io.BytesIO(b"".join(client.get(f"/photos/{big.id}/result.png").streaming_content)))
    assert full.size == (3000, 1000)


def test_a_photo_without_previews_gets_them_on_first_view(client, photo, alice):
    # Results from before previews existed (and an original whose job has not run yet).
    job = photo.jobs.get()
    for owner in (photo, job):
        owner.preview.delete(save=True)
    client.force_login(alice)

    for url in ("preview.jpg", "original-preview.jpg"):
        response = client.get(f"/photos/{photo.id}/{url}")
        assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (90, 60)
    photo.refresh_from_db()
    job.refresh_from_db()
    assert photo.preview and job.preview


def test_the_photo_page_compares_before_and_after(client, photo, alice):
    client.force_login(alice)

    page = client.get(f"/photos/{photo.id}/").content.decode()

    job = photo.jobs.get()
    # Both sides at display size (a TIFF original too, which browsers cannot show); the
    # buttons download the full resolution.
    assert f'src="/photos/{photo.id}/preview.jpg?v={job.id}"' in page
    assert f'src="/photos/{photo.id}/original-preview.jpg"' in page
    assert f'href="/photos/{photo.id}/result.png?v={job.id}&amp;download=1"' in page
    assert job.model_version in page


def test_colorize_again_queues_a_new_job(client, photo, alice, django_capture_on_commit_callbacks):
    client.force_login(alice)

    with django_capture_on_commit_callbacks() as enqueued:
        response = client.post(f"/photos/{photo.id}/colorize")

    assert response.status_code == 302
    assert [job.state for job in photo.jobs.all()] == ["queued", "succeeded"]
    assert len(enqueued) == 1
    # The previous result stays on show until the new one replaces it.
    assert client.get(f"/photos/{photo.id}/result.png").status_code == 200


def test_delete_removes_every_stored_file(client, photo, alice, media, django_capture_on_commit_callbacks):
    services.run_job(services.colorize_photo(photo).id)  # a second result, preview, thumbnail and palette
    client.force_login(alice)
    for url in ("/photos/{id}/result.jpg", "/photos/{id}/original.png"):  # stored on first request
        client.get(url.format(id=photo.id))
    # The original and its preview and PNG rendering; each job's result, preview, thumbnail, palette; a JPEG.
    assert len(stored_files(media)) == 3 + 2 * 4 + 1

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/photos/{photo.id}/delete")

    assert response.status_code == 302
    assert stored_files(media) == []
    assert not Photo.objects.exists() and not ColorizationJob.objects.exists()


def test_actions_need_post(client, photo, alice):
    client.force_login(alice)

    assert client.get(f"/photos/{photo.id}/delete").status_code == 405
    assert client.get(f"/photos/{photo.id}/colorize").status_code == 405
    assert Photo.objects.filter(id=photo.id).exists()


def test_the_gallery_is_newest_first_and_paginated(client, alice):
    names = [f"photo-{number:02}.png" for number in range(30)]
    for name in names:
        services.upload_photo(alice, SimpleUploadedFile(name, image_bytes("PNG", size=(16, 16))))
    client.force_login(alice)

    first = client.get("/").context["page"]
    second = client.get("/?page=2").context["page"]

    assert [photo.original_filename for photo in first] == names[::-1][:24]
    assert [photo.original_filename for photo in second] == names[::-1][24:]


def test_sign_up_log_out_and_log_in(client, django_user_model):
    weak = client.post(
        "/accounts/signup/", {"username": "carol", "password1": "12345678", "password2": "12345678"}
    )
    assert "This password is too common." in weak.content.decode()
    assert not django_user_model.objects.exists()

    response = client.post(
        "/accounts/signup/",
        {"username": "carol", "password1": "a fine long passphrase", "password2": "a fine long passphrase"},
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200

    assert client.get("/accounts/logout/").status_code == 405  # logging out takes a POST
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302

    client.post("/accounts/login/", {"username": "carol", "password": "a fine long passphrase"})
    assert client.get("/").status_code == 200


def test_admin_lists_photos_and_jobs_and_deletes_their_files(
    client, photo, admin_user, media, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)

    assert "grandma.tif" in client.get("/admin/gallery/photo/").content.decode()
    assert "Done" in client.get("/admin/gallery/colorizationjob/").content.decode()
    assert client.get(f"/admin/gallery/photo/{photo.id}/change/").status_code == 200
    job_page = client.get(f"/admin/gallery/colorizationjob/{photo.jobs.get().id}/change/").content.decode()
    assert f"palettes/{photo.jobs.get().id}.png" in job_page and 'type="file"' not in job_page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/gallery/photo/", {"action": "delete_selected", "_selected_action": [photo.id], "post": "yes"}
        )

    assert not Photo.objects.exists()
    assert stored_files(media) == []


def test_colorize_again_with_vividness_and_hints(client, photo, alice):
    client.force_login(alice)
    hints = [{"x": 80, "y": 10, "color": "#3a5fcd"}, {"x": 0, "y": 0, "color": "#b22222"}]

    response = client.post(f"/photos/{photo.id}/colorize", {"vividness": "1.3", "hints": json.dumps(hints)}, follow=True)

    job = photo.jobs.get(state="queued")
    assert (job.vividness, job.hints) == (1.3, hints)
    assert "grandma.tif is queued to be colorized again (vividness 1.3× · 2 colour hints)." in response.content.decode()


@pytest.mark.parametrize(("form", "message"), [
    ({"hints": json.dumps([{"x": 90, "y": 0, "color": "#3a5fcd"}])},
     "Not colorized again: hints[0].x: 90 is outside the photo, which is 90 px wide (x from 0 to 89)."),
    ({"hints": "[{"}, "Not colorized again: the hints are not valid JSON."),
    ({"vividness": "3"}, "Not colorized again: vividness: Ensure this value is less than or equal to 2.0."),
])
def test_colorize_again_with_bad_settings_says_why(client, photo, alice, form, message):
    client.force_login(alice)

    response = client.post(f"/photos/{photo.id}/colorize", form, follow=True)

    assert message in html.unescape(response.content.decode())
    assert photo.jobs.count() == 1


def test_other_settings_wait_for_the_job_on_its_way(client, photo, alice):
    services.colorize_photo(photo, vividness=0.5)
    client.force_login(alice)

    response = client.post(f"/photos/{photo.id}/colorize", {"vividness": "1.5"}, follow=True)

    assert "grandma.tif is being colorized; wait for that to finish" in response.content.decode()
    assert photo.jobs.count() == 2


def test_the_photo_page_shows_the_settings_and_keeps_the_hints(client, photo, alice):
    hints = [{"x": 12, "y": 34, "color": "#3a5fcd"}]
    services.run_job(services.colorize_photo(photo, vividness=1.25, hints=hints).id)
    client.force_login(alice)

    page = client.get(f"/photos/{photo.id}/").content.decode()

    assert "Shown: vividness 1.25× · 1 colour hint" in page
    assert 'name="vividness" min="0" max="2" step="0.05" value="1.25"' in page
    form_hints = re.search(r'name="hints" value="([^"]*)" data-role="hints"', page).group(1)
    assert json.loads(html.unescape(form_hints)) == hints
    assert f'data-palette-url="/photos/{photo.id}/palette.json"' in page


def test_the_eyedropper_asks_the_palette_of_a_point(client, photo, alice):
    client.force_login(alice)

    colours = client.get(f"/photos/{photo.id}/palette.json?x=89&y=59").json()
    outside = client.get(f"/photos/{photo.id}/palette.json?x=89&y=60")

    assert (colours["x"], colours["y"], len(colours["colors"])) == (89, 59, 6)
    assert outside.status_code == 400
    assert outside.json() == {"error": "y: 60 is outside the photo, which is 60 px high (y from 0 to 59)."}


def test_the_eyedropper_has_nothing_before_a_result(client, alice):
    photo = services.upload_photo(alice, SimpleUploadedFile("new.png", image_bytes("PNG")))
    client.force_login(alice)

    response = client.get(f"/photos/{photo.id}/palette.json?x=1&y=1")

    assert response.status_code == 409
    assert response.json() == {"error": "This photo has not been colorized yet."}
