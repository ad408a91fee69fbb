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
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from rest_framework.authtoken.models import Token

from mlcore import png

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
# The photo page shows the original and the result at this size (longest side) at most, so that
# it loads ~1 MB whatever the photo's size; "Download" gives the full resolution.
PREVIEW_SIZE = 2048
PREVIEW_QUALITY = 85
State = ColorizationJob.State


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


def colorize_photo(photo):
    """Queue a new colorization of the photo; its newest job is the one shown to the user."""
    current = photo.jobs.first()
    if current is not None and not current.is_finished:
        return current  # already on its way: a double click must not colorize twice
    job = ColorizationJob.objects.create(photo=photo)
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
            image.load()
        colorizer = get_colorizer()
        files = colorize_image(colorizer, image, original_preview=not job.photo.preview)
        del image
        job.result.save("result.png", ContentFile(files["result"]), save=False)
        job.preview.save("preview.jpg", ContentFile(files["preview"]), save=False)
        job.thumbnail.save("thumbnail.jpg", ContentFile(files["thumbnail"]), save=False)
        if "original_preview" in files:  # the page's "before": made once per photo, while it is decoded
            _store_original_preview(job.photo, files["original_preview"])
    except Exception as exc:
        _delete_files([f.name for f in (job.result, job.thumbnail, job.preview) if f])
        # Kept for the record: the final "gave up" message quotes the last error.
        ColorizationJob.objects.filter(pk=job.pk).update(error=describe_error(exc))
        raise
    finished = ColorizationJob.objects.filter(pk=job.pk).update(
        state=State.SUCCEEDED,
        result=job.result.name,
        thumbnail=job.thumbnail.name,
        preview=job.preview.name,
        model_version=colorizer.version,
        error="",
        finished_at=timezone.now(),
    )
    if not finished:  # the photo was deleted while we worked
        _delete_files([job.result.name, job.thumbnail.name, job.preview.name])


def colorize_image(colorizer, image, original_preview=True):
    """The files a job stores, as bytes: the full-resolution result (PNG), its display-size
    preview and thumbnail (JPEG), and the original's preview when asked for.

    The result is written by mlcore.png (the fast way: the same bytes for every download, as
    they are stored); the previews are shrunk from the images, never copied at full size.
    """
    colorized = colorizer.colorize(image)
    files = {"result": png.encode(colorized)}
    preview = display_image(colorized, PREVIEW_SIZE)
    del colorized
    files["preview"] = _encode(preview, "JPEG", PREVIEW_QUALITY)
    thumbnail = preview.copy()  # the preview is small: the thumbnail comes from it
    thumbnail.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    files["thumbnail"] = _encode(thumbnail, "JPEG")
    if original_preview:
        files["original_preview"] = _preview_jpeg(image)
    return files


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
    # The preview by its name too: the worker may have stored it since `photo` was read.
    previews = {photo.preview.field.generate_filename(photo, ""), photo.preview.name} - {""}
    names = [photo.original.name, _converted_name(photo, "PNG"), *previews]
    for job in photo.jobs.all():
        names += [f.name for f in (job.result, job.thumbnail, job.preview) if f]
        names.append(_converted_name(job, "JPEG"))  # made on the first JPEG download, if any
    with transaction.atomic():
        photo.delete()
        # Only once the rows are surely gone: a rollback must not leave rows without files.
        transaction.on_commit(lambda: _delete_files(names))


def _delete_files(names):
    for name in names:
        default_storage.delete(name)


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
        stored = default_storage.save(name, ContentFile(data))
        if stored != name:  # another request stored it first: keep that one
            default_storage.delete(stored)
    return default_storage.open(name, "rb")


def _converted_name(owner, image_format):
    return f"converted/{owner.id}.{image_format.lower()}"


def original_preview(photo):
    """The photo's display-size original, opened for reading; made now if the worker has not."""
    if not photo.preview:
        with photo.original.open("rb") as f:
            image = Image.open(io.BytesIO(f.read()))
            image.load()
        _store_original_preview(photo, _preview_jpeg(image))
    return photo.preview.open("rb")


def result_preview(job):
    """The job's display-size result, opened for reading (made now for results from before previews)."""
    if not job.preview:
        with job.result.open("rb") as f:
            image = Image.open(io.BytesIO(f.read()))
            image.load()
        job.preview.save("preview.jpg", ContentFile(_preview_jpeg(image)), save=False)
        if not ColorizationJob.objects.filter(pk=job.pk, preview="").update(preview=job.preview.name):
            default_storage.delete(job.preview.name)  # made at the same time elsewhere
            job.refresh_from_db(fields=["preview"])
    return job.preview.open("rb")


def _preview_jpeg(image):
    return _encode(display_image(image, PREVIEW_SIZE), "JPEG", PREVIEW_QUALITY)


def _store_original_preview(photo, data):
    photo.preview.save("preview.jpg", ContentFile(data), save=False)
    if not Photo.objects.filter(pk=photo.pk, preview="").update(preview=photo.preview.name):
        default_storage.delete(photo.preview.name)  # made at the same time elsewhere, or the photo is gone
        photo.refresh_from_db(fields=["preview"])


def display_image(image, size=None):
    """What a browser shows of the image: upright, transparency on white, 8-bit grey or RGB, no
    larger than `size` pixels (longest side) when given; shrunk before any per-pixel conversion.
    May be the image itself, when it is all that already."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) not in (0, 1):
        image = ImageOps.exif_transpose(image)
    mode = image.mode
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
    if image.mode in ("I", "F"):  # 16-bit levels (as the colorizer reads them) or floats in [0, 1]
        scale = 255.0 if image.mode == "F" else 255 / 65535
        return Image.fromarray(np.clip(np.asarray(image, np.float32) * scale + 0.5, 0, 255).astype(np.uint8))
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
    """A one-line reason for the user."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


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
