"""The test suite's settings: base.py unchanged but for what keeps a run apart and fast."""

import atexit
import os
import shutil
import tempfile

# base.py puts every runtime path (SQLite file, media, broker messages) under this folder: a
# fresh one keeps a developer's `make run` worker from eating the suite's messages.
os.environ["COLORIZER_VAR_DIR"] = _VAR_DIR = tempfile.mkdtemp(prefix="colorizer-tests-")
atexit.register(shutil.rmtree, _VAR_DIR, ignore_errors=True)

from .base import *  # noqa: E402,F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not SQLite's in-memory database, so that the Celery worker's thread sees the data.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_VAR_DIR, "test.sqlite3")}  # noqa: F405

if not REDIS_URL:  # noqa: F405
    # The filesystem broker polls its folder; a test waits for every message it sends.
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "polling_interval": 0.1}  # noqa: F405

# Real hashing costs a second per user created.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
