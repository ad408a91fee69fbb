"""The job endpoint pollers call: states, reasons, timings, result URL, and ETag for cheap polls."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from gallery import services
from gallery.models import ColorizationJob
from web.helpers import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(alice):
    photo = services.upload_photo(alice, SimpleUploadedFile("scan.png", image_bytes("PNG")))
    return photo.jobs.get()


def url(job):
    return f"/api/v1/jobs/{job.id}/"


def test_a_succeeded_job_has_its_timings_and_result_url(as_alice, job, colorizer):
    services.run_job(job.id)
    job.refresh_from_db()

    body = as_alice.get(url(job)).json()

    assert body["state"] == "succeeded"
    assert body["error"] is None
    assert body["result_url"] == f"http://testserver/api/v1/photos/{job.photo_id}/result"
    assert body["attempts"] == 1
    assert [body["queued_at"], body["started_at"], body["finished_at"]] == [
        t.isoformat().replace("+00:00", "Z") for t in (job.queued_at, job.started_at, job.finished_at)
    ]


def test_a_failed_job_says_why_and_has_no_result(as_alice, job):
    services.fail_job(job.id, "Colorizing took longer than the time limit (540 s).")

    body = as_alice.get(url(job)).json()

    assert (body["state"], body["error"], body["result_url"]) == (
        "failed", "Colorizing took longer than the time limit (540 s).", None
    )


def test_a_job_being_retried_shows_no_error_yet(as_alice, job):
    ColorizationJob.objects.filter(pk=job.pk).update(state="running", error="OSError: disk hiccup", attempts=1)

    body = as_alice.get(url(job)).json()

    assert (body["state"], body["error"]) == ("running", None)


def test_an_unchanged_job_answers_304_to_its_etag(as_alice, job):
    first = as_alice.get(url(job))
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = as_alice.get(url(job), HTTP_IF_NONE_MATCH=etag)

    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert as_alice.get(url(job), HTTP_IF_NONE_MATCH='"something else"').status_code == 200


def test_the_etag_changes_with_the_job(as_alice, job):
    etag = as_alice.get(url(job))["ETag"]
    ColorizationJob.objects.filter(pk=job.pk).update(state="running", attempts=1)

    response = as_alice.get(url(job), HTTP_IF_NONE_MATCH=etag)

    assert response.status_code == 200
    assert response.json()["state"] == "running"
    assert response["ETag"] != etag


def test_the_etag_is_no_way_around_the_owner_check(as_bob, as_alice, job):
    etag = as_alice.get(url(job))["ETag"]

    assert as_bob.get(url(job), HTTP_IF_NONE_MATCH=etag).status_code == 404


def test_a_304_costs_no_serialization_and_two_queries(as_alice, job, monkeypatch, django_assert_max_num_queries):
    from gallery.api.serializers import JobSerializer

    etag = as_alice.get(url(job))["ETag"]

    def fail(*args):
        raise AssertionError("an unchanged job was serialized")

    monkeypatch.setattr(JobSerializer, "to_representation", fail)
    with django_assert_max_num_queries(2):  # the token, then the job
        assert as_alice.get(url(job), HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.parametrize("change", [
    {"state": "running", "attempts": 1}, {"state": "failed", "error": "Gave up."}, {"model_version": "other"},
])
def test_every_visible_change_changes_the_etag(as_alice, job, change):
    before = as_alice.get(url(job))
    ColorizationJob.objects.filter(pk=job.pk).update(**change)

    after = as_alice.get(url(job), HTTP_IF_NONE_MATCH=before["ETag"])

    assert after.status_code == 200 and after["ETag"] != before["ETag"] and after.json() != before.json()


def test_the_etag_depends_on_the_address_the_urls_start_with(as_alice, job, settings):
    settings.ALLOWED_HOSTS = ["testserver", "other.example"]
    etag = as_alice.get(url(job))["ETag"]

    assert as_alice.get(url(job), HTTP_IF_NONE_MATCH=etag, HTTP_HOST="other.example").status_code == 200
