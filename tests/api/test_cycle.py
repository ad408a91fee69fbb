"""Upload, poll, download through the API, with a real Celery worker on the configured broker.

Marked `services`: `make test` runs these once on SQLite with the filesystem broker and once
more on PostgreSQL with Redis.
"""

import io
import time

import pytest
from PIL import Image

from web.helpers import image_bytes

from .conftest import upload_file

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("celery_worker")]


def poll(client, job_url, timeout=90):
    """Poll as a well-behaved client does: with the last ETag, until the job is finished."""
    deadline = time.monotonic() + timeout
    job, etag = None, ""
    while job is None or job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job still {job['state']} after {timeout} s"
        response = client.get(job_url, HTTP_IF_NONE_MATCH=etag)
        if response.status_code != 304:
            assert response.status_code == 200
            job, etag = response.json(), response["ETag"]
        time.sleep(0.1)
    return job


def test_upload_poll_download(as_alice):
    data = image_bytes("JPEG", size=(90, 60))

    uploaded = as_alice.post("/api/v1/photos/", {"image": upload_file("attic.jpg", data, "image/jpeg")})
    assert uploaded.status_code == 202
    job = poll(as_alice, uploaded["Location"])

    assert job["state"] == "succeeded" and job["error"] is None
    assert job["started_at"] and job["finished_at"] and job["attempts"] == 1
    result = as_alice.get(job["result_url"])
    assert result["Content-Type"] == "image/png"
    colorized = Image.open(io.BytesIO(b"".join(result.streaming_content)))
    assert (colorized.format, colorized.size, colorized.mode) == ("PNG", (90, 60), "RGB")
    original = as_alice.get(uploaded.json()["original_url"])
    assert b"".join(original.streaming_content) == data
    succeeded = as_alice.get("/api/v1/photos/?state=succeeded").json()["results"]
    assert [photo["id"] for photo in succeeded] == [uploaded.json()["id"]]


def test_a_failed_job_says_why(as_alice, settings, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a weights file")
    settings.COLORIZER_WEIGHTS = str(broken)

    uploaded = as_alice.post("/api/v1/photos/", {"image": upload_file()})
    job = poll(as_alice, uploaded["Location"])

    assert job["state"] == "failed"
    assert job["error"] == "Something went wrong on our side while colorizing this photo."  # no path
    assert job["result_url"] is None
    assert as_alice.get(f"/api/v1/photos/{uploaded.json()['id']}/result").status_code == 409


def test_colorize_again_runs_a_new_job(as_alice):
    uploaded = as_alice.post("/api/v1/photos/", {"image": upload_file()}).json()
    first = poll(as_alice, uploaded["job"]["url"])

    again = as_alice.post(f"/api/v1/photos/{uploaded['id']}/colorize/")
    second = poll(as_alice, again["Location"])

    assert second["id"] != first["id"]
    assert second["state"] == "succeeded"
    assert as_alice.get(uploaded["url"]).json()["job"]["id"] == second["id"]
