"""The gallery's domain actions.

Views, the REST API and the Celery task all call these functions, so the rules (what an
acceptable upload is, how a job runs, what deleting removes) exist in one place.
"""

import functools
import hashlib
import io
import os
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from rest_framework.authtoken.models import Token

from . import tasks
from .models import ColorizationJob, Photo

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
State = ColorizationJob.State


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
    photo.original.save(name, ContentFile(data), save=False)
    try:
        with transaction.atomic():
            photo.save()
            colorize_photo(photo)
    except BaseException:
        default_storage.delete(photo.original.name)  # the rows are gone: so goes the file
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
    except Exception as exc:  # damaged data surfaces as many exception types inside Pillow
        raise UploadRejected("not_an_image", f"{name} is not an image Pillow can read: {exc}") from None
    return image_format, width, height


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
        if (current.vividness, current.hints) == (vividness, hints):
            return current  # a double click must not colorize twice
        raise Conflict(
            "busy", f"{photo.original_filename} is being colorized; wait for that to finish, then apply your settings."
        )
    job = ColorizationJob.objects.create(photo=photo, vividness=vividness, hints=hints)
    # Only a committed job can be found by the worker.
    transaction.on_commit(lambda: tasks.colorize.delay(str(job.id)))
    return job


def run_job(job_id):
    """Colorize the photo of one job and store the result and its thumbnail.

    Called by the Celery task, possibly more than once for the same job (redelivered message,
    retry): a finished job is left alone and one left "running" by a dead worker starts over.
    Exceptions propagate after being noted on the job; the task decides between retrying and
    failing for good (fail_job).
    """
    job = _start_job(job_id)
    if job is None:
        return
    try:
        with job.photo.original.open("rb") as original:
            image = Image.open(io.BytesIO(original.read()))
        colorizer = get_colorizer()
        colorized = colorizer.colorize(image, hints=job.hints, vividness=job.vividness)
        thumbnail = colorized.copy()
        thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        job.result.save("result.png", ContentFile(_encode(colorized, "PNG")), save=False)
        job.thumbnail.save("thumbnail.jpg", ContentFile(_encode(thumbnail, "JPEG")), save=False)
        if colorizer.proposes_colours:  # the eyedropper's colours, with the same hints
            palettes = colorizer.palettes(image, hints=job.hints)
            job.palette.save("palette.png", ContentFile(palettes.to_png()), save=False)
    except Exception as exc:
        _delete_files(job.files)
        # Kept for the record: the final "gave up" message quotes the last error.
        ColorizationJob.objects.filter(pk=job.pk).update(error=describe_error(exc))
        raise
    finished = ColorizationJob.objects.filter(pk=job.pk).update(
        state=State.SUCCEEDED,
        result=job.result.name,
        thumbnail=job.thumbnail.name,
        palette=job.palette.name,
        model_version=colorizer.version,
        error="",
        finished_at=timezone.now(),
    )
    if not finished:  # the photo was deleted while we worked
        _delete_files(job.files)


def _start_job(job_id):
    with transaction.atomic():
        job = (
            ColorizationJob.objects.select_for_update(of=("self",))
            .select_related("photo")
            .filter(pk=job_id)
            .first()
        )
        if job is None or job.is_finished:  # photo deleted, or a duplicate message
            return None
        if job.attempts >= settings.COLORIZER_JOB_MAX_ATTEMPTS:
            last_error = job.error or "the worker stopped while colorizing it"
            _finish_failed(job_id, f"Gave up after {job.attempts} attempts. Last error: {last_error}")
            return None
        job.state = State.RUNNING
        job.started_at = timezone.now()
        job.attempts += 1
        job.save(update_fields=["state", "started_at", "attempts"])
    return job


def fail_job(job_id, reason):
    """Record that a job failed for good, and why (shown to the user)."""
    _finish_failed(job_id, reason)


def _finish_failed(job_id, reason):
    ColorizationJob.objects.filter(pk=job_id).exclude(state=State.SUCCEEDED).update(
        state=State.FAILED, error=reason, finished_at=timezone.now()
    )


def requeue_stale_jobs():
    """Queue again the jobs still "running" well past the hard time limit.

    Their worker died without the broker giving the message back (the filesystem broker
    cannot). Returns the ids of the jobs queued again.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    with transaction.atomic():
        stale = list(
            ColorizationJob.objects.select_for_update()
            .filter(state=State.RUNNING, started_at__lt=cutoff)
            .values_list("id", flat=True)
        )
        ColorizationJob.objects.filter(id__in=stale).update(state=State.QUEUED)
        for job_id in stale:
            transaction.on_commit(functools.partial(tasks.colorize.delay, str(job_id)))
    return stale


def delete_photo(photo):
    """Delete the photo, its jobs and every file any of them stored."""
    names = [photo.original.name]
    for job in photo.jobs.all():
        names += job.files
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


def converted_image(stored_file, image_format):
    """The stored image re-encoded (JPEG downloads, PNG previews of formats browsers lack)."""
    with stored_file.open("rb") as f:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(f.read())))
    return _encode(image, image_format)


def _encode(image, image_format):
    options = {}
    if image_format == "JPEG":
        image = image.convert("RGB")
        options["quality"] = 92
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def describe_error(exc):
    """A one-line reason for the user."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def get_colorizer():
    """The model for the current settings, loaded once per worker process and kept."""
    return _load_colorizer(settings.COLORIZER_WEIGHTS, settings.COLORIZER_DEVICE, settings.COLORIZER_SIZE)


@functools.cache
def _load_colorizer(weights, device, size):
    # Imported here: torch is heavy and only workers need it.
    from mlcore.inference import Colorizer
    from mlcore.weights import DEFAULT_WEIGHTS

    return Colorizer.load(weights or DEFAULT_WEIGHTS, device=device, size=size)


def reset_api_token(user):
    """Give the user a new API token; the old one stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)
