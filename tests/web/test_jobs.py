"""Colorization jobs through a real Celery worker.

Marked `services`: `make test` runs these once on SQLite with the filesystem broker and once
more on PostgreSQL with Redis.
"""

import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from gallery import services, tasks
from gallery.models import ColorizationJob
from mlcore.palette import PaletteGrid

from .helpers import image_bytes, stored_files, wait_until_finished

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("celery_worker")]


def upload(owner, name="scan.png", data=None):
    photo = services.upload_photo(owner, SimpleUploadedFile(name, data or image_bytes("PNG", size=(90, 60))))
    return photo, photo.jobs.get()


def test_the_worker_colorizes_an_upload_at_full_resolution(alice):
    data = image_bytes("JPEG", size=(90, 60))
    photo, job = upload(alice, "scan.jpg", data)

    [job] = wait_until_finished([job.id])

    assert (job.state, job.error, job.attempts) == ("succeeded", "", 1)
    assert job.model_version.startswith("resunet-")
    assert job.queued_at <= job.started_at <= job.finished_at
    with job.result.open("rb") as result:
        colorized = Image.open(io.BytesIO(result.read()))
        assert (colorized.format, colorized.size, colorized.mode) == ("PNG", (90, 60), "RGB")
    with job.thumbnail.open("rb") as thumbnail:
        assert Image.open(io.BytesIO(thumbnail.read())).format == "JPEG"
    with job.palette.open("rb") as palette:
        assert len(PaletteGrid.from_png(palette.read()).at(89, 59)) == 6  # the eyedropper's colours
    with photo.original.open("rb") as original:
        assert original.read() == data  # never modified


def test_a_job_that_cannot_succeed_says_why_to_people_and_the_details_to_the_log(alice, settings, tmp_path, caplog):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a weights file")
    settings.COLORIZER_WEIGHTS = str(broken)
    photo, job = upload(alice)

    [job] = wait_until_finished([job.id])

    assert job.state == "failed"
    # No path, host or exception text: only what happened, in words.
    assert job.error == "Something went wrong on our side while colorizing this photo."
    assert not job.result and not job.thumbnail and not job.palette
    [logged] = [record for record in caplog.records
                if getattr(record, "job_id", None) == str(job.id) and record.exc_info]
    assert "WeightsError" in caplog.text and str(broken) in caplog.text


def test_transient_errors_are_retried_then_given_up_with_the_last_error(alice, settings, media):
    settings.COLORIZER_JOB_MAX_ATTEMPTS = 2
    photo, job = upload(alice)
    default_storage.delete(photo.original.name)  # reading it now fails with an OSError

    [job] = wait_until_finished([job.id])

    assert job.state == "failed"
    assert job.attempts == 2
    assert job.error == ("Gave up after 2 attempts. Last error: The photo or its result could not be read or "
                         "stored: a storage or database problem on our side.")
    assert stored_files(media) == []


def test_an_unreadable_original_fails_at_once_without_retries(alice, settings):
    settings.COLORIZER_JOB_MAX_ATTEMPTS = 3
    photo, job = upload(alice)
    wait_until_finished([job.id])  # the upload's own job may run before the damage: damage, then queue
    name = photo.original.name
    default_storage.delete(name)
    default_storage.save(name, io.BytesIO(b"damaged on disk"))  # Pillow raises UnidentifiedImageError

    [job] = wait_until_finished([services.colorize_photo(photo).id])

    assert (job.state, job.attempts) == ("failed", 1)
    assert job.error == "The stored photo could not be read as an image."


def test_a_job_left_running_by_a_lost_worker_runs_again(alice):
    # What a redelivered message finds: the job its dead worker had started.
    photo, job = upload(alice)
    wait_until_finished([job.id])
    job = ColorizationJob.objects.create(photo=photo, state="running", started_at=timezone.now(), attempts=1)

    tasks.colorize.delay(str(job.id))

    [job] = wait_until_finished([job.id])
    assert (job.state, job.attempts) == ("succeeded", 2)


def test_running_jobs_whose_lease_ran_out_are_queued_again(alice):
    photo, job = upload(alice)
    wait_until_finished([job.id])
    long_ago = timezone.now() - timedelta(hours=2)
    stale = ColorizationJob.objects.create(photo=photo, state="running", started_at=long_ago, attempts=1,
                                           lease_expires_at=long_ago + timedelta(minutes=1))
    recent = ColorizationJob.objects.create(photo=photo, state="running", started_at=timezone.now(), attempts=1,
                                            lease_expires_at=timezone.now() + timedelta(minutes=1))

    assert services.sweep_jobs() == [str(stale.id)]

    [stale] = wait_until_finished([stale.id])
    assert (stale.state, stale.attempts) == ("succeeded", 2)
    recent.refresh_from_db()
    assert recent.state == "running"


def test_a_job_that_keeps_losing_its_worker_is_given_up(alice, settings):
    photo, job = upload(alice)
    wait_until_finished([job.id])
    job = ColorizationJob.objects.create(
        photo=photo, state="running", started_at=timezone.now(), attempts=settings.COLORIZER_JOB_MAX_ATTEMPTS
    )

    tasks.colorize.delay(str(job.id))

    [job] = wait_until_finished([job.id])
    assert job.state == "failed"
    assert job.error == "Gave up after 3 attempts. Last error: the worker stopped while colorizing it"


def test_colorize_again_makes_a_new_job_once_the_last_one_finished(alice):
    photo, first = upload(alice)

    assert services.colorize_photo(photo) == first  # still on its way
    wait_until_finished([first.id])
    second = services.colorize_photo(photo)

    [second] = wait_until_finished([second.id])
    assert second != first and second.state == "succeeded"
    assert photo.current_job == second


def test_deleting_a_photo_while_it_is_colorized_leaves_no_file(alice, media):
    photo, job = upload(alice, data=image_bytes("PNG", size=(400, 300)))
    services.delete_photo(photo)

    # The worker takes messages in order: once a later job is done, the deleted one was handled.
    later_photo, later = upload(alice)
    [later] = wait_until_finished([later.id])

    later_photo.refresh_from_db()
    assert stored_files(media) == sorted([later_photo.original.name, later_photo.preview.name, *later.files])
    assert not ColorizationJob.objects.filter(id=job.id).exists()
