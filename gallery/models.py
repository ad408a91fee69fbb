import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework.authtoken.models import TokenProxy

# Stored files are named and typed by the format Pillow found, never by the user's file name: a
# JPEG called x.html must not be stored as .html (S3 would record and serve it as a web page).
EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
              "TIFF": ".tif"}
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


def _original_path(photo, filename):
    # The user's filename is kept in a field; storage names must not be guessable or clash.
    return f"originals/{photo.id}{EXTENSIONS[photo.format]}"


def _result_path(job, filename):
    return f"results/{job.id}.png"


def _thumbnail_path(job, filename):
    return f"thumbnails/{job.id}.jpg"


def _palette_path(job, filename):
    return f"palettes/{job.id}.png"


def _preview_path(job, filename):
    return f"previews/{job.id}.jpg"


def _original_preview_path(photo, filename):
    return f"previews/{photo.id}-original.jpg"


class Photo(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="photos")
    # Exactly the bytes that were uploaded; never rewritten.
    original = models.FileField(upload_to=_original_path, max_length=255)
    original_filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    byte_size = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Pillow's name for the file format (JPEG, PNG, TIFF...).
    format = models.CharField(max_length=16)
    # The original at display size (JPEG, upright, at most PREVIEW_SIZE px): what the photo page
    # shows. Made by the worker; by the page itself for a photo that has none yet.
    preview = models.FileField(upload_to=_original_preview_path, blank=True, max_length=255)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["owner", "-created"], name="photo_owner_newest")]

    def __str__(self):
        return self.original_filename

    @property
    def current_job(self):
        """The newest job: what the user sees. Uses prefetched jobs when present."""
        return next(iter(self.jobs.all()), None)

    @property
    def latest_result_job(self):
        """The newest job with a result: "colorize again" keeps showing it until it is replaced."""
        return next((job for job in self.jobs.all() if job.state == ColorizationJob.State.SUCCEEDED), None)

    @property
    def megapixels(self):
        return self.width * self.height / 1e6


class ColorizationJob(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="jobs")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    result = models.FileField(upload_to=_result_path, blank=True, max_length=255)
    thumbnail = models.FileField(upload_to=_thumbnail_path, blank=True, max_length=255)
    # The model's plausible colours at every point of the photo (mlcore.palette), for the
    # eyedropper; made with the result, so the web process never runs the model.
    palette = models.FileField(upload_to=_palette_path, blank=True, max_length=255)
    # What the person asked for: the chroma gain's multiplier (1 = the model's tuned colour) and
    # colour hints, [{"x", "y", "color": "#rrggbb"}, ...] in pixels of the upright photo.
    vividness = models.FloatField(default=1.0)
    hints = models.JSONField(default=list, blank=True)
    # The result at display size, for the photo page; `result` is the full resolution.
    preview = models.FileField(upload_to=_preview_path, blank=True, max_length=255)
    model_version = models.CharField(max_length=100, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When its message was last handed to the broker; null while it has not been (the broker
    # was down): the sweeper (gallery.tasks.sweep_jobs) sends it then.
    sent_at = models.DateTimeField(null=True, blank=True)
    # The run that holds a running job: only the holder of the token may record its outcome.
    # Its worker renews the lease while it works; a lease that runs out means the worker died,
    # and the sweeper queues the job again. The holder is "<celery node>:<pid>".
    lease_token = models.UUIDField(null=True, blank=True)
    lease_holder = models.CharField(max_length=255, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        # A photo's jobs newest first: every page and API list fetches them (and filters on the
        # newest one's state) by this.
        indexes = [models.Index(fields=["photo", "-queued_at"], name="job_photo_newest")]

    def __str__(self):
        return f"{self.photo} ({self.state})"

    @property
    def is_finished(self):
        return self.state in (self.State.SUCCEEDED, self.State.FAILED)

    @property
    def files(self):
        """The stored files of the job, by name."""
        return [f.name for f in (self.result, self.thumbnail, self.preview, self.palette) if f]

    @property
    def settings_label(self):
        """The settings in a few words, as shown with the result."""
        hints = len(self.hints)
        return f"vividness {self.vividness:g}× · {hints} colour hint{'' if hints == 1 else 's'}"


class ApiToken(TokenProxy):
    """API tokens as the admin shows them: by owner and the first characters only.

    Token's own str() is the whole key, which the admin would put in page titles, confirmations
    and its change log, for every staff member to read.
    """

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self):
        return f"{self.key[:6]}… of {self.user}"
