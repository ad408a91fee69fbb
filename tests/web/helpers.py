"""Helpers the web tests share."""

import io
import os
import time
from urllib.parse import quote

from django.db import connection
from PIL import Image

from gallery.models import ColorizationJob


def image_bytes(image_format="PNG", size=(48, 32), mode="L", **save_options):
    """A small synthetic photo: a radial gradient with a bar across it, in the given format."""
    image = Image.radial_gradient("L").resize(size)
    image.paste(40, (0, size[1] // 3, size[0], size[1] // 3 + 3))
    image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, image_format, **save_options)
    return buffer.getvalue()


def wait_until_finished(job_ids, timeout=90):
    """Wait for the worker to finish the jobs; returns them fresh from the database."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = list(ColorizationJob.objects.filter(id__in=job_ids))
        if len(jobs) == len(job_ids) and all(job.is_finished for job in jobs):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still unfinished after {timeout} s: {[(j.id, j.state) for j in jobs]}")
        time.sleep(0.2)


def stored_files(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def database_url():
    """The test database, for a process that reads its settings from the environment."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{database['NAME']}"
    credentials = quote(database["USER"]) + (f":{quote(database['PASSWORD'])}" if database["PASSWORD"] else "")
    return f"postgres://{credentials}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def worker_storage(settings):
    """STORAGES with the media folder a worker process of this run uses (the settings' default)."""
    return {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": settings.VAR_DIR / "media"},
        },
    }


def worker_environment(settings, **variables):
    """The environment of a worker (or web) process of this test run: its database and model."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "colorizer_site.settings.test",  # and COLORIZER_TEST_RUN_DIR
        "DATABASE_URL": database_url(),
        "COLORIZER_WEIGHTS": settings.COLORIZER_WEIGHTS,
        "COLORIZER_DEVICE": settings.COLORIZER_DEVICE,
        "COLORIZER_SIZE": str(settings.COLORIZER_SIZE),
        **variables,
    }
