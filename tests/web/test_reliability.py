"""No job lost, none run twice, no worker exhausted: the rules, in-process and fast.

The same faults against real servers (a Redis of the test's own stopped and restarted, a worker
killed with SIGKILL) are in tests/deploy/test_faults.py.
"""

import io
import struct
import subprocess
import sys
import uuid
import zlib
from datetime import timedelta

import pytest
from celery.app.task import Task
from celery.exceptions import Reject
from deploy.helpers import free_port
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from kombu.exceptions import OperationalError
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from colorizer_site.celery import app as celery_app
from gallery import queue, services, tasks
from gallery.models import ColorizationJob, Photo

from .helpers import image_bytes, stored_files, worker_environment, worker_storage

TOO_LARGE = "This photo is too large to colorize here."


@pytest.fixture(autouse=True)
def _broker_not_paused():
    """A publish that failed pauses publishing for a few seconds: not into the next test."""
    queue.breaker.reset()
    yield
    queue.breaker.reset()


def as_user(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def png(size, mode="L"):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


def older(job, seconds):
    """Pretend the job was queued this long ago."""
    ColorizationJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(seconds=seconds))


# --- Sending, and sending again -----------------------------------------------------------------
# The broker actually down (a Redis of the tests' own, stopped): tests/deploy/test_faults.py.


@pytest.fixture
def empty_queue():
    """The configured broker (the filesystem one, or Redis in the services pass), with no message."""
    celery_app.control.purge()
    yield
    celery_app.control.purge()


def unsent_job(owner):
    """A job whose message never left (the request that queued it found the broker down)."""
    photo = services.upload_photo(owner, SimpleUploadedFile("scan.png", image_bytes()))
    job = photo.jobs.get()
    assert job.sent_at is None  # the commit it waits for never comes in a `db` test
    return job


@pytest.mark.django_db
def test_the_sweeper_sends_a_job_that_was_never_sent_once(alice, empty_queue):
    job = unsent_job(alice)

    assert services.sweep_jobs() == []  # the request that queued it gets a few seconds first
    older(job, 60)
    assert services.sweep_jobs() == [str(job.id)]
    assert services.sweep_jobs() == []

    job.refresh_from_db()
    assert job.sent_at is not None
    assert queue.waiting_count() == 1


@pytest.mark.django_db
def test_colorize_again_sends_a_job_that_was_never_sent(alice, empty_queue, django_capture_on_commit_callbacks):
    job = unsent_job(alice)

    with django_capture_on_commit_callbacks(execute=True):
        again = services.colorize_photo(job.photo)

    assert again == job  # still the one job
    job.refresh_from_db()
    assert job.sent_at is not None
    assert queue.waiting_count() == 1


@pytest.mark.django_db
def test_jobs_sent_long_ago_are_sent_again_only_while_their_queue_is_empty(alice, settings, empty_queue):
    job = unsent_job(alice)
    long_ago = timezone.now() - timedelta(seconds=settings.COLORIZER_JOB_RESEND_AFTER + 1)
    ColorizationJob.objects.filter(pk=job.pk).update(sent_at=long_ago)
    queue.publish([uuid.uuid4()])  # some other job's message, waiting

    assert services.sweep_jobs() == []  # this job's message may well be waiting too
    celery_app.control.purge()
    assert services.sweep_jobs() == [str(job.id)]
    assert services.sweep_jobs() == []  # sent again just now
    assert queue.waiting_count() == 1


@pytest.mark.django_db
def test_the_sweeper_queues_again_a_job_whose_lease_ran_out(alice, empty_queue, caplog):
    job = unsent_job(alice)
    a_minute_ago = timezone.now() - timedelta(minutes=1)
    ColorizationJob.objects.filter(pk=job.pk).update(state="running", attempts=1, sent_at=a_minute_ago,
                                                     started_at=a_minute_ago, lease_expires_at=a_minute_ago,
                                                     lease_holder="celery@gone:42", lease_token=uuid.uuid4())

    assert services.sweep_jobs() == [str(job.id)]

    job.refresh_from_db()
    assert (job.state, job.attempts, job.lease_token, job.lease_holder) == ("queued", 1, None, "")
    assert job.sent_at is not None
    assert queue.waiting_count() == 1
    assert f"job {job.id}: its worker (celery@gone:42) stopped renewing its lease; queued again" in caplog.text


@pytest.mark.django_db
def test_a_cache_outage_lets_throttled_requests_through_and_is_logged(alice, settings, media, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "colorizer_site.cache.ForgivingRedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    upload = as_user(alice).post("/api/v1/photos/", {"image": SimpleUploadedFile("scan.png", image_bytes())})
    token = APIClient().post("/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"})

    assert upload.status_code == 202
    assert token.status_code == 200
    assert "Redis (cache) unavailable (ConnectionError" in caplog.text


# --- Shapes and memory ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sliver():
    """1 x 50,000,000 pixels (50 MP, within the pixel limit) in a PNG of about 100 KB."""
    return black_and_white_png(1, 50_000_000)


def black_and_white_png(width, height):
    """A valid all-black 1-bit PNG, written directly: Pillow takes seconds for 50 million rows."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter type 0, then the row's bits
    compressor = zlib.compressobj(9)
    rows_per_chunk = max(1, 2**20 // len(row))
    data = b"".join(
        compressor.compress(row * min(rows_per_chunk, height - done)) for done in range(0, height, rows_per_chunk)
    ) + compressor.flush()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("size", "code", "message"),
    [
        ((1, 50_000), "too_small", "sliver.png is 1 × 50000 pixels; each side must be at least 16 pixels"),
        ((50_000, 1), "too_small", "sliver.png is 50000 × 1 pixels; each side must be at least 16 pixels"),
        ((2, 25_000), "too_small", "sliver.png is 2 × 25000 pixels; each side must be at least 16 pixels"),
        ((16, 481), "bad_aspect_ratio",
         "sliver.png is 16 × 481 pixels; its longer side may be at most 30 times its shorter side"),
    ],
)
def test_degenerate_shapes_are_refused_at_upload_with_a_clear_message(alice, media, size, code, message):
    response = as_user(alice).post("/api/v1/photos/", {"image": SimpleUploadedFile("sliver.png", png(size))})

    assert response.status_code == 400
    assert response.json()["error"] == {"code": code, "message": message, "detail": None}
    assert stored_files(media) == []


@pytest.mark.django_db
def test_the_issues_50_megapixel_sliver_is_refused_from_its_header(alice, sliver):
    with pytest.raises(services.UploadRejected) as refusal:
        services.upload_photo(alice, SimpleUploadedFile("sliver.png", sliver))

    assert refusal.value.code == "too_small"
    assert refusal.value.message == "sliver.png is 1 × 50000000 pixels; each side must be at least 16 pixels"


@pytest.mark.django_db
def test_shapes_at_the_limits_are_accepted(alice):
    for size in [(16, 16), (16, 480), (480, 16)]:
        services.upload_photo(alice, SimpleUploadedFile("fine.png", png(size)))


@pytest.mark.django_db
def test_a_photo_over_the_workers_memory_budget_is_refused_at_upload(alice, settings):
    settings.COLORIZER_WORKER_MEMORY_MB = 2  # about 35,000 pixels

    with pytest.raises(services.UploadRejected) as refusal:
        services.upload_photo(alice, SimpleUploadedFile("scan.png", png((200, 200))))
    services.upload_photo(alice, SimpleUploadedFile("small.png", png((150, 150))))

    assert refusal.value.code == "too_large_to_colorize"
    assert refusal.value.message.startswith("scan.png is too large to colorize here (0.0 megapixels of L)")


def test_the_hand_made_png_is_what_pillow_reads():
    image = Image.open(io.BytesIO(black_and_white_png(20, 30)))
    image.load()
    assert (image.format, image.mode, image.size, image.getextrema()) == ("PNG", "1", (20, 30), (0, 0))


def test_the_memory_estimate_follows_pixels_and_mode():
    assert services.estimated_peak_mb(1000, 1000, "L") == pytest.approx(57 / 1.048576)
    assert services.estimated_peak_mb(1000, 1000, "RGBA") == pytest.approx(60 / 1.048576)
    # The largest photo accepted by default fits the default budget.
    assert services.estimated_peak_mb(10_000, 5_000, "CMYK") < 4096


def stored_job(owner, data, name="stored.png"):
    """A photo stored before today's upload rules, with a queued job: as the worker finds it."""
    image = Image.open(io.BytesIO(data))
    photo = Photo(owner=owner, original_filename=name, sha256="0", byte_size=len(data), width=image.width,
                  height=image.height, format="PNG")
    photo.original.save(name, ContentFile(data), save=False)
    photo.save()
    return ColorizationJob.objects.create(photo=photo)


@pytest.mark.django_db
def test_a_stored_sliver_fails_in_the_worker_with_a_message_for_people(alice, sliver, media):
    job = stored_job(alice, sliver)

    # Before the image is decoded: colorizing it asked for 7.6 GB and took minutes.
    tasks.colorize.apply([str(job.id)])

    job.refresh_from_db()
    assert (job.state, job.attempts) == ("failed", 1)
    assert job.error == "This photo is 1 × 50000000 pixels; each side must be at least 16 pixels."


# A worker process near its memory limit (RLIMIT_AS: what a container's limit does to it), its
# model loaded and warm, given a photo that needs more: allocations really fail.
OUT_OF_MEMORY = """
import io, resource, sys
import django
django.setup()
from PIL import Image
from gallery import services, tasks
services.get_colorizer().colorize(Image.new("L", (64, 64)))
in_use = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (in_use + 40 * 2**20, resource.RLIM_INFINITY))
tasks.colorize.apply([sys.argv[1]])
"""


@pytest.mark.django_db(transaction=True)
def test_running_out_of_memory_fails_the_job_with_a_message_for_people(alice, colorizer, settings):
    settings.STORAGES = worker_storage(settings)
    # About 650 MB by the (conservative) estimate; the worker is allowed 40 MB, less than the
    # decoded photo and its result alone need (12 + 36 MB).
    job = stored_job(alice, image_bytes("PNG", size=(4000, 3000)))

    worker = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY, str(job.id)], env=worker_environment(settings),
                            cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120)

    job.refresh_from_db()
    assert (job.state, job.error) == ("failed", TOO_LARGE), worker.stderr
    # The cause is in the logs, with the job.
    assert f"job {job.id} failed: {TOO_LARGE}" in worker.stderr
    assert "MemoryError" in worker.stderr or "allocate" in worker.stderr


# --- One run at a time (a real worker receiving a job twice: tests/deploy/test_faults.py) -------


@pytest.mark.django_db
def test_a_run_that_lost_its_lease_leaves_no_result(alice, colorizer, media, monkeypatch):
    job = stored_job(alice, image_bytes())
    colorize = services.get_colorizer().colorize

    def colorize_while_the_lease_is_taken_over(image, **colour_settings):
        # The run's worker seemed dead (its lease ran out): the sweeper queued the job again and
        # another worker claimed it.
        ColorizationJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())
        services.sweep_jobs()
        services.claim_job(job.id, "celery@other:1")
        return colorize(image, **colour_settings)

    monkeypatch.setattr(services.get_colorizer(), "colorize", colorize_while_the_lease_is_taken_over)

    services.run_job(job.id)

    job.refresh_from_db()
    assert (job.state, job.attempts, job.lease_holder, job.result.name) == ("running", 2, "celery@other:1", "")
    assert stored_files(media) == [job.photo.original.name]  # the first run's files are gone


@pytest.mark.django_db
def test_a_live_lease_keeps_other_deliveries_out_and_a_dead_holders_does_not(alice):
    job = stored_job(alice, image_bytes())
    in_a_minute = timezone.now() + timedelta(minutes=1)
    dead = subprocess.Popen(["true"])
    dead.wait()
    ColorizationJob.objects.filter(pk=job.pk).update(state="running", attempts=1, lease_expires_at=in_a_minute,
                                                     lease_holder="celery@elsewhere:1234")

    assert services.claim_job(job.id, "celery@here:99") is None  # another worker's: it may be alive
    ColorizationJob.objects.filter(pk=job.pk).update(lease_holder=f"celery@here:{dead.pid}")
    claimed = services.claim_job(job.id, "celery@here:99")  # a pool process of ours that died

    assert (claimed.state, claimed.attempts, claimed.lease_holder) == ("running", 2, "celery@here:99")


def test_a_retry_that_cannot_be_sent_leaves_the_job_to_the_sweeper(monkeypatch):
    marked = []
    monkeypatch.setattr(queue, "mark_unsent", marked.extend)
    monkeypatch.setattr(Task, "retry", _broker_down)
    tasks.colorize.push_request(args=["the-job"])
    try:
        with pytest.raises(Reject):
            tasks.colorize.retry(exc=OSError("storage hiccup"))
    finally:
        tasks.colorize.pop_request()

    assert marked == ["the-job"]


def _broker_down(self, *args, **kwargs):
    # What Celery raises when the retry's message cannot be published.
    raise Reject(OperationalError("Error 111 connecting to redis:6379. Connection refused."), requeue=False)
