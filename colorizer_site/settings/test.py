"""The test suite's settings: dev.py unchanged but for what keeps a run apart and fast."""

import atexit
import os
import shutil
import tempfile

# A run keeps to itself: its runtime files (SQLite, media, broker messages) in a fresh folder,
# its own PostgreSQL test database and its own Redis keys. Neither a developer's `make run`
# worker nor another test run on the same servers can take its messages or its data.
# Processes the suite starts (a real `celery worker`) inherit the same run.
_RUN_DIR = os.environ.get("COLORIZER_TEST_RUN_DIR")
if _RUN_DIR is None:
    _RUN_DIR = os.environ["COLORIZER_TEST_RUN_DIR"] = tempfile.mkdtemp(prefix="colorizer_tests_")
    atexit.register(shutil.rmtree, _RUN_DIR, ignore_errors=True)
_RUN = os.path.basename(_RUN_DIR)
# base.py (through dev.py) puts every runtime path under this folder.
os.environ["COLORIZER_VAR_DIR"] = _RUN_DIR

from .dev import *  # noqa: E402,F403

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not SQLite's in-memory database, so that other threads and processes see the data.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_RUN_DIR, "test.sqlite3")}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{_RUN}"}  # noqa: F405

if REDIS_URL:  # noqa: F405
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": f"{_RUN}:"}  # noqa: F405

# Real hashing costs a second per user created.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
