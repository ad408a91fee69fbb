"""The gallery's domain actions.

Views, the REST API and the Celery task all call these functions, so the rules (what an
acceptable upload is, how a job runs, what deleting removes) exist in one place.
"""

import functools
import hashlib
import io
import logging
import os
import socket
import threading
import uuid
from datetime import timedelta
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, connections, transaction
from django.db.models import F, OuterRef, Prefetch, Q, Subquery
from django.utils import timezone
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from rest_framework.authtoken.models import Token

from mlcore import png
from mlcore.image_modes import DEEP_GREY_MODES, grey_scale

from . import queue
from .models import CONTENT_TYPES, ColorizationJob, Photo

# Pillow's format names, with the names people know them by.
ACCEPTED_FORMATS = {
    "JPEG": "JPEG",
    "MPO": "JPEG",  # what cameras with several frames (e.g. phones) write
    "PNG": "PNG",
    "WEBP": "WebP",
    "TIFF": "TIFF",
    "BMP": "BMP",
    "GIF": "GIF",
}
THUMBNAIL_SIZE = 320
# The photo page shows the original and the result at this size (longest side) at most, so that
# it loads ~1 MB whatever the photo's size; "Download" gives the full resolution.
PREVIEW_SIZE = 2048
PREVIEW_QUALITY = 85
State = ColorizationJob.State
# What a failed job tells its owner, by the kind of exception (the first that matches).
FAILURE_REASONS = [
    ((UnidentifiedImageError, Image.DecompressionBombError), "The stored photo could not be read as an image."),
    (MemoryError, "Colorizing this photo needed more memory than the worker has."),
    ((OSError, BotoCoreError, ClientError, DatabaseError),
     "The photo or its result could not be read or stored: a storage or database problem on our side."),
]
job_log = logging.getLogger("gallery.jobs")

# A job's peak memory beyond the loaded model, per pixel: the decoded image in its own mode
# (MODE_BYTES) plus what colorizing adds (float RGB and L, the result, its PNG, the thumbnail's
# copy). Measured 48-58 bytes per pixel on 4 and 10 MP noisy photos (L, RGB, I;16, RGBA).
WORK_BYTES_PER_PIXEL = 56
MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2,
              "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3}  # 4 for every other mode (RGBA, CMYK, I, F...)
TOO_LARGE_TO_COLORIZE = "This photo is too large to colorize here."
HINTS_NOT_TAKEN = "The colorizer in use cannot take colour hints; colorize this photo again without them."
# An unsent job is left to the request that queued it for this long before the sweeper sends it.
SEND_GRACE = timedelta(seconds=10)
SWEEP_BATCH = 1000  # at most this many jobs sent per sweep; the next sweep sends more


class Conflict(Exception):
    """An action the photo's state does not allow now; `message` says why, for the user."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class UploadRejected(Exception):
    """An upload the gallery refuses; `message` names the file and says why, for the user."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class CannotColorize(Exception):
    """A job that no retry can mend; `message` is written for the user, the cause goes to the logs."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


def upload_photo(owner, uploaded_file):
    """Validate one uploaded file, store it exactly as uploaded and queue its colorization.

    Raises UploadRejected when the file is not an acceptable image.
    """
    name = os.path.basename(uploaded_file.name or "") or "unnamed file"
    data = _read_upload(name, uploaded_file)
    image_format, width, height = _inspect_image(name, data)
    photo = Photo(
        owner=owner,
        original_filename=name,
        sha256=hashlib.sha256(data).hexdigest(),
        byte_size=len(data),
        width=width,
        height=height,
        format=image_format,
    )
    photo.original.save(name, _content(data, CONTENT_TYPES[image_format]), save=False)
    try:
        with transaction.atomic():
            photo.save()
            colorize_photo(photo)
    except BaseException:
        # The rows were not stored: neither is the file. (Sending the job happens after the
        # commit and cannot fail the upload: see gallery.queue.)
        default_storage.delete(photo.original.name)
        raise
    return photo


def _read_upload(name, uploaded_file):
    limit = settings.COLORIZER_MAX_UPLOAD_BYTES
    if uploaded_file.size == 0:
        raise UploadRejected("empty_file", f"{name} is empty")
    if uploaded_file.size > limit:
        raise UploadRejected(
            "too_large", f"{name} is {uploaded_file.size / 1e6:.1f} MB; the limit is {limit / 1e6:g} MB"
        )
    return b"".join(uploaded_file.chunks())


def _inspect_image(name, data):
    """Return (format, width, height) of an image Pillow can fully decode, or raise UploadRejected."""
    limit = settings.COLORIZER_MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            # The header is enough to refuse a huge image before any pixel is decoded.
            if width * height > limit:
                raise UploadRejected(
                    "too_many_pixels",
                    f"{name} is {width * height / 1e6:.1f} megapixels; the limit is {limit / 1e6:g}",
                )
            if image.format not in ACCEPTED_FORMATS:
                raise UploadRejected(
                    "unsupported_format",
                    f"{name} is a {image.format} image; accepted formats are "
                    + ", ".join(sorted(set(ACCEPTED_FORMATS.values()))),
                )
            # Still from the header alone: a sliver of an image decodes small but colorizes huge.
            problem = shape_problem(width, height)
            if problem:
                raise UploadRejected(problem[0], f"{name} {problem[1]}")
            if too_large_to_colorize(width, height, image.mode):
                raise UploadRejected(
                    "too_large_to_colorize",
                    f"{name} is too large to colorize here ({width * height / 1e6:.1f} megapixels of "
                    f"{image.mode}); try a smaller copy of it",
                )
            image_format = image.format
            image.verify()
        # verify() checks the structure but leaves the image unusable; decoding it for real
        # also catches truncated pixel data.
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            # Recorded as displayed: turned sideways by EXIF, the colorized result is too.
            if image.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8):
                width, height = height, width
    except UploadRejected:
        raise
    except Image.DecompressionBombError:
        # Pillow refuses at twice our limit before we see the size (see GalleryConfig.ready).
        raise UploadRejected(
            "too_many_pixels", f"{name} is over {2 * limit / 1e6:g} megapixels; the limit is {limit / 1e6:g}"
        ) from None
    except UnidentifiedImageError:
        raise UploadRejected(
            "not_an_image", f"{name} is not an image Pillow can read: cannot identify image file"
        ) from None
    except Exception:  # damaged data surfaces as many exception types inside Pillow
        raise UploadRejected(
            "not_an_image", f"{name} is not an image Pillow can read: it is damaged or cut short"
        ) from None
    return image_format, width, height


def shape_problem(width, height):
    """(code, reason) when an image of this size cannot be colorized, else None.

    The reason follows the file's name or "This photo": "is 1 × 50000 pixels; ...".
    """
    short, long = sorted((width, height))
    min_side, max_ratio = settings.COLORIZER_MIN_SIDE, settings.COLORIZER_MAX_ASPECT_RATIO
    if short < min_side:
        return "too_small", f"is {width} × {height} pixels; each side must be at least {min_side} pixels"
    if long > short * max_ratio:
        return (
            "bad_aspect_ratio",
            f"is {width} × {height} pixels; its longer side may be at most {max_ratio:g} times its shorter side",
        )
    return None


def estimated_peak_mb(width, height, mode):
    """Memory a job on this image needs on top of the loaded model, in MiB (an estimate)."""
    return width * height * (WORK_BYTES_PER_PIXEL + MODE_BYTES.get(mode, 4)) / 2**20


def too_large_to_colorize(width, height, mode):
    return estimated_peak_mb(width, height, mode) > settings.COLORIZER_WORKER_MEMORY_MB


def photos_of(owner, state=None):
    """The owner's photos, newest first, with their jobs (newest first) fetched along.

    With `state`, only the photos whose current job (the newest) is in that state.
    """
    newest_first = ColorizationJob.objects.order_by("-queued_at")
    photos = Photo.objects.filter(owner=owner).prefetch_related(Prefetch("jobs", queryset=newest_first))
    if state:
        current_state = newest_first.filter(photo=OuterRef("pk")).values("state")[:1]
        photos = photos.alias(current_state=Subquery(current_state)).filter(current_state=state)
    return photos


def jobs_of(owner):
    return ColorizationJob.objects.filter(photo__owner=owner)


def colorize_photo(photo, vividness=1.0, hints=()):
    """Queue a new colorization of the photo with these settings; its newest job is the one shown.

    `vividness` multiplies the model's tuned colour strength (0 to 2); `hints` are colours the
    person knows, [{"x", "y", "color": "#rrggbb"}, ...] in pixels of the upright photo (checked
    by the caller: gallery.api.serializers.ColorizeSettingsSerializer). A job already on its way
    with the same settings is answered instead of a new one; with other settings, Conflict.
    """
    hints = [dict(hint) for hint in hints]
    current = photo.jobs.first()
    if current is not None and not current.is_finished:
        if current.state == State.QUEUED and current.sent_at is None:
            queue.publish_on_commit([current.id])  # the broker was away when it was queued: try now
        if (current.vividness, current.hints) == (vividness, hints):
            return current  # a double click must not colorize twice
        raise Conflict(
            "busy", f"{photo.original_filename} is being colorized; wait for that to finish, then apply your settings."
        )
    job = ColorizationJob.objects.create(photo=photo, vividness=vividness, hints=hints)
    # Only a committed job can be found by the worker. Should the broker be down, the job stays
    # queued, unsent, and the sweeper sends it later.
    queue.publish_on_commit([job.id])
    return job


def run_job(job_id, holder=None):
    """Colorize the photo of one job and store the result, its preview, thumbnail and palette.

    Called by the Celery task, possibly more than once for the same job (a message sent twice,
    redelivered, retried). The run first claims the job (claim_job): a finished job, or one
    another live run holds, is left alone, so a job runs once at a time and its attempts count
    real starts. While it works, the run renews its lease; only the lease's holder may record
    the outcome. Exceptions propagate after the job is released (queued again, the error
    noted); the task decides between retrying and failing for good (fail_job).
    """
    job = claim_job(job_id, holder or default_holder())
    if job is None:
        return
    token = job.lease_token
    try:
        with _LeaseRenewal(job.pk, token):
            colorizer, photo_preview = _colorize(job)
    except Exception as exc:
        # The owner reads the reason; the details (paths, endpoints, the traceback) are for
        # operators, found by the job's id.
        job_log.exception("job %s: colorizing failed", job.id, extra={"job_id": str(job.id),
                                                                       "photo_id": str(job.photo_id)})
        reason = exc.message if isinstance(exc, CannotColorize) else describe_error(exc)
        _release_job(job.pk, token, reason)
        raise
    finished = ColorizationJob.objects.filter(pk=job.pk, state=State.RUNNING, lease_token=token).update(
        state=State.SUCCEEDED,
        result=job.result.name,
        thumbnail=job.thumbnail.name,
        preview=job.preview.name,
        palette=job.palette.name,
        model_version=colorizer.version,
        error="",
        finished_at=timezone.now(),
        **_NO_LEASE,
    )
    if not finished:  # the photo was deleted while we worked, or our lease was taken over
        job_log.warning("job %s: its lease was lost or the photo deleted during the run; result discarded",
                        job.pk, extra={"job_id": str(job.pk)})
        _delete_files(_files_of_run(job, photo_preview))
    elif photo_preview:
        _record_preview(job.photo)


_NO_LEASE = {"lease_token": None, "lease_holder": "", "lease_expires_at": None}


def _colorize(job):
    """Colorize the job's original with its settings into job.result, job.preview, job.thumbnail
    and, where the model proposes colours, job.palette, and into job.photo.preview when the photo
    has none (saved, not yet recorded).

    Returns the colorizer and whether the photo's preview was made.
    """
    photo_preview = not job.photo.preview
    try:
        with job.photo.original.open("rb") as original:
            image = Image.open(io.BytesIO(original.read()))
        check_workable(image)
        colorizer = get_colorizer()
        if job.hints and not colorizer.takes_hints:
            raise CannotColorize(HINTS_NOT_TAKEN)
        try:
            files = colorize_image(colorizer, image, hints=job.hints, vividness=job.vividness,
                                   original_preview=photo_preview)
        except (MemoryError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not _is_allocation_failure(exc):
                raise
            raise CannotColorize(TOO_LARGE_TO_COLORIZE) from exc
        del image
        job.result.save("result.png", _content(files["result"], "image/png"), save=False)
        job.preview.save("preview.jpg", _content(files["preview"], "image/jpeg"), save=False)
        job.thumbnail.save("thumbnail.jpg", _content(files["thumbnail"], "image/jpeg"), save=False)
        if "palette" in files:
            job.palette.save("palette.png", _content(files["palette"], "image/png"), save=False)
        if photo_preview:  # the page's "before": made once per photo, while it is decoded
            job.photo.preview.save("preview.jpg", _content(files["original_preview"], "image/jpeg"), save=False)
    except Exception:
        _delete_files(_files_of_run(job, photo_preview))
        raise
    return colorizer, photo_preview


def _files_of_run(job, photo_preview):
    return job.files + ([job.photo.preview.name] if photo_preview and job.photo.preview else [])


def colorize_image(colorizer, image, hints=(), vividness=1.0, original_preview=True):
    """The files a job stores, as bytes: the full-resolution result (PNG), its display-size
    preview and thumbnail (JPEG), the eyedropper's palette (PNG) where the model proposes
    colours, and the original's preview when asked for.

    The result is written by mlcore.png (the fast way: the same bytes for every download, as
    they are stored); the previews are shrunk from the images, never copied at full size.
    """
    colorized = colorizer.colorize(image, hints=hints, vividness=vividness)
    files = {"result": png.encode(colorized)}
    preview = display_image(colorized, PREVIEW_SIZE)
    del colorized
    files["preview"] = _encode(preview, "JPEG", PREVIEW_QUALITY)
    thumbnail = preview.copy()  # the preview is small: the thumbnail comes from it
    thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    files["thumbnail"] = _encode(thumbnail, "JPEG")
    if colorizer.proposes_colours:  # the eyedropper's colours, with the same hints
        files["palette"] = colorizer.palettes(image, hints=hints).to_png()
    if original_preview:
        files["original_preview"] = _preview_jpeg(image)
    return files


def check_workable(image):
    """Raise CannotColorize for an image (opened, not decoded) that is no photo to colorize here.

    The upload refuses these already; this catches files stored before the rules, or with
    tighter settings, before anything is decoded or allocated.
    """
    width, height = image.size
    problem = shape_problem(width, height)
    if problem:
        raise CannotColorize(f"This photo {problem[1]}.")
    if too_large_to_colorize(width, height, image.mode):
        raise CannotColorize(TOO_LARGE_TO_COLORIZE)


def _is_allocation_failure(exc):
    # torch reports a failed allocation as RuntimeError ("DefaultCPUAllocator: can't allocate
    # memory", "CUDA out of memory").
    message = str(exc).lower()
    return "allocat" in message or "out of memory" in message


def default_holder():
    """Who runs a job, outside a Celery worker (tests, the shell): this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_job(job_id, holder):
    """Make the job this run's: running, attempts + 1, a fresh lease. None when it must not run.

    A compare-and-set on the row: of two runs that read the job at the same moment, only one
    update matches, whatever the database.
    """
    now = timezone.now()
    job = ColorizationJob.objects.select_related("photo").filter(pk=job_id).first()
    if job is None or job.is_finished:  # photo deleted, or a duplicate message
        return None
    if job.state == State.RUNNING and _lease_is_live(job, holder, now):
        job_log.info("job %s is already running (%s); this delivery does nothing", job.pk, job.lease_holder,
                     extra={"job_id": str(job.pk)})
        return None
    unchanged = ColorizationJob.objects.filter(
        pk=job.pk, state=job.state, lease_token=job.lease_token, attempts=job.attempts
    )
    if job.attempts >= settings.COLORIZER_JOB_MAX_ATTEMPTS:
        last_error = job.error or "the worker stopped while colorizing it"
        unchanged.update(
            state=State.FAILED, error=f"Gave up after {job.attempts} attempts. Last error: {last_error}",
            finished_at=now, **_NO_LEASE,
        )
        return None
    token = uuid.uuid4()
    lease_expires_at = now + timedelta(seconds=settings.COLORIZER_JOB_LEASE_SECONDS)
    if not unchanged.update(state=State.RUNNING, started_at=now, attempts=F("attempts") + 1, lease_token=token,
                            lease_holder=holder, lease_expires_at=lease_expires_at):
        return None  # another run claimed it first
    job.state, job.started_at, job.attempts = State.RUNNING, now, job.attempts + 1
    job.lease_token, job.lease_holder, job.lease_expires_at = token, holder, lease_expires_at
    return job


def _lease_is_live(job, holder, now):
    if job.lease_expires_at is None or job.lease_expires_at <= now:
        return False
    # The pool process that held it died on this very worker, which put the message back at
    # once: no need to wait for the lease to run out.
    node, _, pid = job.lease_holder.rpartition(":")
    if node and node == holder.rpartition(":")[0] and pid.isdigit() and int(pid) != os.getpid():
        return _process_alive(int(pid))
    return True


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a dead child its parent has not reaped yet is a zombie
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


class _LeaseRenewal:
    """Renews a running job's lease, from a thread of its own, until the run ends.

    The worker's process is busy colorizing (the GIL is mostly released by torch, numpy and
    Pillow); if it dies, renewals stop and the lease runs out.
    """

    def __init__(self, job_id, token):
        self.job_id, self.token = job_id, token
        self.seconds = settings.COLORIZER_JOB_LEASE_SECONDS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{job_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _renew(self):
        try:
            while not self._stop.wait(self.seconds / 4):
                try:
                    renewed = ColorizationJob.objects.filter(pk=self.job_id, lease_token=self.token).update(
                        lease_expires_at=timezone.now() + timedelta(seconds=self.seconds)
                    )
                except DatabaseError as exc:
                    job_log.warning("job %s: lease not renewed: %s", self.job_id, exc)
                    continue
                if not renewed:
                    job_log.warning("job %s: lease lost (the job was queued again or deleted)", self.job_id)
                    return
        finally:
            connections.close_all()  # this thread's own connections


def _release_job(job_id, token, error):
    """Give a failed run's job back: queued again (the task's retry is its message), error noted."""
    ColorizationJob.objects.filter(pk=job_id, state=State.RUNNING, lease_token=token).update(
        state=State.QUEUED, error=error, sent_at=timezone.now(), **_NO_LEASE
    )


def fail_job(job_id, reason):
    """Record that a job failed for good, and why (shown to the user)."""
    _finish_failed(job_id, reason)


def _finish_failed(job_id, reason):
    ColorizationJob.objects.filter(pk=job_id).exclude(state=State.SUCCEEDED).update(
        state=State.FAILED, error=reason, finished_at=timezone.now(), **_NO_LEASE
    )


def sweep_jobs():
    """Make sure every queued job reaches a worker; run by beat (gallery.tasks.sweep_jobs).

    - A running job whose lease ran out lost its worker (killed, its machine gone): it is
      queued again (its attempt counted; COLORIZER_JOB_MAX_ATTEMPTS still bounds them).
    - Queued jobs never sent (the broker was down, or the web process died after the commit)
      are sent.
    - Queued jobs sent more than COLORIZER_JOB_RESEND_AFTER seconds ago are sent again while
      nothing waits in the queue: their message was lost (a broker that lost its data, the
      filesystem broker's worker killed).

    Sending twice is harmless (see run_job). Returns the ids sent.
    """
    now = timezone.now()
    recovered = _recover_abandoned_jobs(now)
    queued = ColorizationJob.objects.filter(state=State.QUEUED).order_by("queued_at")
    unsent = list(
        queued.filter(sent_at__isnull=True, queued_at__lt=now - SEND_GRACE)
        .exclude(pk__in=recovered)
        .values_list("id", flat=True)[:SWEEP_BATCH]
    )
    stale = queued.filter(sent_at__lt=now - timedelta(seconds=settings.COLORIZER_JOB_RESEND_AFTER))
    resend = []
    if stale.exists() and queue.waiting_count() == 0:
        resend = list(stale.values_list("id", flat=True)[:SWEEP_BATCH])
        job_log.warning("re-sending %d jobs queued long ago while their queue is empty", len(resend))
    return queue.publish(recovered + unsent + resend)


def _recover_abandoned_jobs(now):
    lease = timedelta(seconds=settings.COLORIZER_JOB_LEASE_SECONDS)
    # Rows without a lease (older code, or set by hand) count from their start.
    expired = Q(state=State.RUNNING) & (
        Q(lease_expires_at__lt=now)
        | Q(lease_expires_at__isnull=True, started_at__lt=now - lease)
        | Q(lease_expires_at__isnull=True, started_at__isnull=True)
    )
    recovered = []
    for job_id, token, holder in ColorizationJob.objects.filter(expired).values_list(
        "id", "lease_token", "lease_holder"
    )[:SWEEP_BATCH]:
        if ColorizationJob.objects.filter(expired, pk=job_id, lease_token=token).update(
            state=State.QUEUED, sent_at=None, **_NO_LEASE
        ):
            job_log.warning("job %s: its worker (%s) stopped renewing its lease; queued again", job_id,
                            holder or "unknown", extra={"job_id": str(job_id)})
            recovered.append(job_id)
    return recovered


def delete_photo(photo):
    """Delete the photo, its jobs and every file any of them stored."""
    # The preview by its name too: the worker may have stored it since `photo` was read.
    previews = {photo.preview.field.generate_filename(photo, ""), photo.preview.name} - {""}
    names = [photo.original.name, _converted_name(photo, "PNG"), *previews]
    for job in photo.jobs.all():
        names += job.files
        names.append(_converted_name(job, "JPEG"))  # made on the first JPEG download, if any
    with transaction.atomic():
        photo.delete()
        # Only once the rows are surely gone: a rollback must not leave rows without files.
        transaction.on_commit(lambda: _delete_files(names))


def _delete_files(names):
    for name in names:
        default_storage.delete(name)


def palette_at(photo, x, y):
    """The model's plausible colours at pixel (x, y) of the upright photo, from its newest result:
    [{"color": "#rrggbb", "probability": p}, ...], most likely first (checked by the caller: x, y
    inside the photo). Raises Conflict when there is no result, or one made without them."""
    from mlcore.palette import PaletteGrid  # Pillow only: no torch in the web process

    job = photo.latest_result_job
    if job is None:
        raise Conflict("not_colorized", "This photo has not been colorized yet.")
    if not job.palette:
        raise Conflict(
            "no_palette", "This result has no colour proposals (it is older than them); colorize the photo again."
        )
    # A click, a drag and the next click all ask the same small file.
    data = cache.get_or_set(f"palette:{job.id}", lambda: _read(job.palette), timeout=3600)
    return PaletteGrid.from_png(data).at(x, y)


def _read(stored_file):
    with stored_file.open("rb") as f:
        return f.read()


def converted_file(owner, stored_file, image_format):
    """The stored image re-encoded (JPEG downloads, PNG renderings of formats browsers lack),
    opened for reading: made on the first request and stored, so that every later one streams
    the same bytes. `owner` (the photo or the job) names the file and deletes it with itself."""
    name = _converted_name(owner, image_format)
    if not default_storage.exists(name):
        with stored_file.open("rb") as f:
            image = Image.open(io.BytesIO(f.read()))
            image.load()
        data = png.encode(display_image(image)) if image_format == "PNG" else _encode(display_image(image), "JPEG")
        stored = default_storage.save(name, _content(data, f"image/{image_format.lower()}"))
        if stored != name:  # another request stored it first: keep that one
            default_storage.delete(stored)
    return default_storage.open(name, "rb")


def _content(data, content_type):
    """File contents to store, with the type S3 records for them (instead of a guess from the name)."""
    content = ContentFile(data)
    content.content_type = content_type
    return content


def _converted_name(owner, image_format):
    return f"converted/{owner.id}.{image_format.lower()}"


def original_preview(photo):
    """The photo's display-size original, opened for reading; made now if the worker has not."""
    return _stored_preview(photo, photo.original)


def result_preview(job):
    """The job's display-size result, opened for reading (made now for results from before previews)."""
    return _stored_preview(job, job.result)


def _stored_preview(record, source):
    """`record.preview` (a Photo's or a job's), opened for reading; made from `source` first when missing."""
    if not record.preview:
        with source.open("rb") as f:
            image = Image.open(io.BytesIO(f.read()))
            image.load()
        record.preview.save("preview.jpg", _content(_preview_jpeg(image), "image/jpeg"), save=False)
        if not _record_preview(record):
            record.refresh_from_db(fields=["preview"])
    return record.preview.open("rb")


def _preview_jpeg(image):
    return _encode(display_image(image, PREVIEW_SIZE), "JPEG", PREVIEW_QUALITY)


def _record_preview(record):
    """Record the stored preview; False (and the file deleted) when the record has one already."""
    if type(record).objects.filter(pk=record.pk, preview="").update(preview=record.preview.name):
        return True
    default_storage.delete(record.preview.name)  # made at the same time elsewhere, or the record is gone
    return False


def display_image(image, size=None):
    """What a browser shows of the image: upright, transparency on white, 8-bit grey or RGB, no
    larger than `size` pixels (longest side) when given; shrunk before any per-pixel conversion.
    May be the image itself, when it is all that already."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) not in (0, 1):
        image = ImageOps.exif_transpose(image)
    mode = image.mode
    grey = grey_scale(image) if mode in DEEP_GREY_MODES else None  # of the whole image: shrinking narrows it
    if mode.startswith("I;16"):
        image = image.convert("I")  # the same values, in a mode Pillow can resize
    elif mode in ("P", "PA"):
        image = image.convert("RGBA" if mode == "PA" or "transparency" in image.info else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        image = image.convert("RGB")  # CMYK and the rest
    if size and max(image.size) > size:
        scale = size / max(image.size)
        shape = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        # Area averaging: one pass, antialiased, a third of bicubic's time on a 12 MP photo.
        image = image.resize(shape, Image.Resampling.BOX)
    if grey:  # scaled by their range, as the colorizer reads them
        low, span = grey
        levels = (np.asarray(image, np.float32) - low) * (255 / span)
        return Image.fromarray(np.clip(levels + 0.5, 0, 255).astype(np.uint8))
    if image.mode in ("LA", "RGBA"):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image


def _encode(image, image_format, quality=92):
    options = {}
    if image_format == "JPEG":
        image = image.convert("RGB") if image.mode not in ("L", "RGB") else image
        options["quality"] = quality
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def describe_error(exc):
    """Why a job failed, for the photo's owner: the kind of failure, never the exception's text.

    That text names server paths, host names and endpoints; the log has it with the job's id.
    """
    for kinds, reason in FAILURE_REASONS:
        if isinstance(exc, kinds):
            return reason
    return "Something went wrong on our side while colorizing this photo."


def get_colorizer():
    """The model for the current settings, loaded once per worker process and kept."""
    return _load_colorizer(settings.COLORIZER_WEIGHTS, settings.COLORIZER_DEVICE, settings.COLORIZER_SIZE)


@functools.cache
def _load_colorizer(weights, device, size):
    # Imported here: torch is heavy and only workers need it.
    import torch

    from mlcore.inference import Colorizer
    from mlcore.weights import DEFAULT_WEIGHTS

    threads = os.environ.get("COLORIZER_TORCH_THREADS")
    if threads:  # this process's share of the worker's cores (gallery.tasks)
        torch.set_num_threads(int(threads))
    return Colorizer.load(weights or DEFAULT_WEIGHTS, device=device, size=size)


def reset_api_token(user):
    """Give the user a new API token; the old one stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def api_token_of(user):
    """The user's API token for the token endpoint: created on first use, renewed once expired."""
    token, _ = Token.objects.get_or_create(user=user)
    return reset_api_token(user) if token_has_expired(token) else token


def token_expires(token):
    """When the token stops working (COLORIZER_API_TOKEN_DAYS after it was made), or None: never."""
    days = settings.COLORIZER_API_TOKEN_DAYS
    return token.created + timedelta(days=days) if days else None


def token_has_expired(token):
    expires = token_expires(token)
    return expires is not None and expires <= timezone.now()


def password_changed(user):
    """Whoever knew the old password may have taken the API token with it: a new one replaces it."""
    if Token.objects.filter(user=user).exists():
        reset_api_token(user)
