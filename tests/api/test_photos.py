"""The photo endpoints for their owner: upload, list, read, delete, colorize again, download."""

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gallery import services
from gallery.api.pagination import PhotoPagination
from gallery.models import ColorizationJob, Photo
from web.helpers import image_bytes, stored_files

from .conftest import upload_file

pytestmark = pytest.mark.django_db


def test_an_upload_is_accepted_and_queued(as_alice, alice):
    data = image_bytes("JPEG", size=(90, 60))

    response = as_alice.post("/api/v1/photos/", {"image": upload_file("attic.jpg", data, "image/jpeg")})

    assert response.status_code == 202
    photo = Photo.objects.get(owner=alice)
    job = photo.jobs.get()
    body = response.json()
    assert response["Location"] == f"http://testserver/api/v1/jobs/{job.id}/"
    assert body == {
        "id": str(photo.id),
        "url": f"http://testserver/api/v1/photos/{photo.id}/",
        "filename": "attic.jpg",
        "format": "JPEG",
        "width": 90,
        "height": 60,
        "byte_size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "created": body["created"],
        "job": {
            "id": str(job.id),
            "url": response["Location"],
            "photo": str(photo.id),
            "photo_url": f"http://testserver/api/v1/photos/{photo.id}/",
            "state": "queued",
            "error": None,
            "result_url": None,
            "vividness": 1.0,
            "hints": [],
            "model_version": "",
            "attempts": 0,
            "queued_at": body["job"]["queued_at"],
            "started_at": None,
            "finished_at": None,
        },
        "original_url": f"http://testserver/api/v1/photos/{photo.id}/original",
        "result_url": None,
    }
    with photo.original.open("rb") as original:
        assert original.read() == data


@pytest.mark.parametrize(
    ("name", "data", "code", "message"),
    [
        ("holiday.jpg", b"these bytes are no JPEG at all", "not_an_image",
         "holiday.jpg is not an image Pillow can read: cannot identify image file"),
        ("nothing.png", b"", "empty_file", "nothing.png is empty"),
        ("scan.ppm", image_bytes("PPM"), "unsupported_format",
         "scan.ppm is a PPM image; accepted formats are BMP, GIF, JPEG, PNG, TIFF, WebP"),
        ("big.png", image_bytes("PNG", size=(1600, 1000)), "too_many_pixels",
         "big.png is 1.6 megapixels; the limit is 1"),
    ],
)
def test_a_refused_upload_says_why_as_the_upload_page_does(as_alice, settings, media, name, data, code, message):
    settings.COLORIZER_MAX_PIXELS = 1_000_000

    response = as_alice.post("/api/v1/photos/", {"image": upload_file(name, data)})

    assert response.status_code == 400
    assert response.json() == {"error": {"code": code, "message": message, "detail": None}}
    assert not Photo.objects.exists()
    assert stored_files(media) == []


def test_a_file_over_the_size_limit_is_refused(as_alice, settings):
    data = image_bytes("PNG", size=(64, 64), mode="RGB")
    settings.COLORIZER_MAX_UPLOAD_BYTES = len(data) - 1

    response = as_alice.post("/api/v1/photos/", {"image": upload_file("big.png", data)})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_large"


def test_an_upload_needs_the_image_field(as_alice):
    response = as_alice.post("/api/v1/photos/", {"photo": upload_file()})

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "image: No file was submitted.",
            "detail": {"image": ["No file was submitted."]},
        }
    }


def test_an_upload_must_be_multipart(as_alice):
    response = as_alice.post("/api/v1/photos/", {"image": "scan.png"}, format="json")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def make_photos(owner, count):
    return [
        services.upload_photo(owner, SimpleUploadedFile(f"scan{i}.png", image_bytes("PNG"))) for i in range(count)
    ]


def test_the_list_is_paginated_newest_first(as_alice, alice):
    photos = make_photos(alice, 3)

    first = as_alice.get("/api/v1/photos/?page_size=2").json()
    second = as_alice.get(first["next"]).json()

    assert first["count"] == 3
    assert [p["filename"] for p in first["results"] + second["results"]] == ["scan2.png", "scan1.png", "scan0.png"]
    assert second["next"] is None
    assert [p["id"] for p in second["results"]] == [str(photos[0].id)]


def test_the_list_filters_by_the_state_of_the_newest_job(as_alice, alice, colorizer):
    running, failed, colorized_again = make_photos(alice, 3)
    ColorizationJob.objects.filter(photo=running).update(state="running")
    ColorizationJob.objects.filter(photo=failed).update(state="failed", error="out of memory")
    services.run_job(colorized_again.jobs.get().id)
    services.colorize_photo(colorized_again)  # queued again: its newest job is queued

    def filenames(state):
        return [p["filename"] for p in as_alice.get(f"/api/v1/photos/?state={state}").json()["results"]]

    assert filenames("queued") == [colorized_again.original_filename]
    assert filenames("running") == [running.original_filename]
    assert filenames("failed") == [failed.original_filename]
    assert filenames("succeeded") == []


@pytest.mark.parametrize("state", ["done", ""])
def test_an_unknown_or_empty_state_filter_is_refused(as_alice, state):
    response = as_alice.get(f"/api/v1/photos/?state={state}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["message"] == f'state: "{state}" is not a valid choice.'


@pytest.mark.parametrize("query", ["page=0", "page=", "page=last", "page_size=0", "page_size=two", "page_size="])
def test_page_and_page_size_must_be_positive_integers(as_alice, alice, query):
    make_photos(alice, 1)

    response = as_alice.get(f"/api/v1/photos/?{query}")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["detail"]) == [query.split("=")[0]]


def test_a_page_size_over_the_maximum_gives_the_maximum(as_alice, alice, monkeypatch):
    monkeypatch.setattr(PhotoPagination, "max_page_size", 2)
    make_photos(alice, 3)

    response = as_alice.get("/api/v1/photos/?page_size=1000")

    assert response.status_code == 200 and len(response.json()["results"]) == 2


def test_a_page_past_the_end_is_not_found(as_alice, alice):
    make_photos(alice, 1)

    response = as_alice.get("/api/v1/photos/?page=2")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_colorized_photo_shows_its_result(as_alice, photo):
    body = as_alice.get(f"/api/v1/photos/{photo.id}/").json()

    result_url = f"http://testserver/api/v1/photos/{photo.id}/result"
    assert body["result_url"] == result_url
    assert body["job"]["state"] == "succeeded"
    assert body["job"]["result_url"] == result_url
    assert body["job"]["model_version"].startswith("resunet-")


def test_the_original_comes_back_exactly_as_uploaded(as_alice, photo):
    response = as_alice.get(f"/api/v1/photos/{photo.id}/original")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert 'filename="grandma.jpg"' in response["Content-Disposition"]
    assert "private" in response["Cache-Control"]
    with photo.original.open("rb") as original:
        assert b"".join(response.streaming_content) == original.read()


def test_the_result_is_a_png_at_full_resolution(as_alice, photo):
    # An image is what the client asks for: that must not be refused as "not acceptable".
    response = as_alice.get(f"/api/v1/photos/{photo.id}/result", HTTP_ACCEPT="image/png")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert 'filename="grandma-colorized.png"' in response["Content-Disposition"]
    image = Image.open(io.BytesIO(b"".join(response.streaming_content)))
    assert (image.format, image.size, image.mode) == ("PNG", (90, 60), "RGB")


def test_there_is_no_result_before_the_photo_is_colorized(as_alice, alice):
    [photo] = make_photos(alice, 1)

    response = as_alice.get(f"/api/v1/photos/{photo.id}/result", HTTP_ACCEPT="image/png")

    assert response.status_code == 409
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == {
        "code": "not_colorized",
        "message": "This photo has not been colorized yet.",
        "detail": None,
    }


def test_colorize_again_queues_a_new_job_once(as_alice, photo):
    response = as_alice.post(f"/api/v1/photos/{photo.id}/colorize/")

    assert response.status_code == 202
    new_job = photo.jobs.get(state="queued")
    assert response["Location"] == response.json()["url"] == f"http://testserver/api/v1/jobs/{new_job.id}/"
    # Asked again while that job waits: the same job, not another one.
    assert as_alice.post(f"/api/v1/photos/{photo.id}/colorize/").json()["id"] == str(new_job.id)
    assert photo.jobs.count() == 2
    # The previous result stays available until the new one replaces it.
    assert as_alice.get(f"/api/v1/photos/{photo.id}/result").status_code == 200


def test_delete_removes_the_photo_and_every_file(as_alice, photo, media, django_capture_on_commit_callbacks):
    assert len(stored_files(media)) == 6  # original and its preview; result, its preview, thumbnail, colour proposals

    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.delete(f"/api/v1/photos/{photo.id}/")

    assert response.status_code == 204
    assert not Photo.objects.exists() and not ColorizationJob.objects.exists()
    assert stored_files(media) == []
    assert as_alice.get(f"/api/v1/photos/{photo.id}/").status_code == 404
