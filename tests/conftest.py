"""Rules and fixtures shared by every test package."""

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from colorizer_site.celery import app as celery_app


def pytest_collection_modifyitems(config, items):
    """Every test needs the servers the settings name (PostgreSQL, Redis) once they are named.

    `make test` names them for its second pass. On CI (CI=true) an unreachable server is an
    error, so that nothing is silently skipped there; elsewhere the tests skip with the reason.
    """
    problems = [problem for problem in (_database_problem(), _redis_problem()) if problem]
    if not problems or not items:
        return
    reason = "; ".join(problems)
    if os.environ.get("CI") == "true":
        pytest.exit(f"{reason} (CI must provide it)", returncode=1)
    for item in items:
        item.add_marker(pytest.mark.skip(reason=reason))


def _database_problem():
    database = settings.DATABASES["default"]
    if "postgresql" not in database["ENGINE"]:
        return None
    return _unreachable("PostgreSQL", database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))


def _redis_problem():
    if not settings.REDIS_URL:
        return None
    url = urlsplit(settings.REDIS_URL)
    return _unreachable("Redis", url.hostname or "127.0.0.1", url.port or 6379)


def _unreachable(name, host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        return f"{name} at {host}:{port} is unreachable ({exc})"
    return None


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, which PostgreSQL drops at the end only if nobody else uses it.

    A server process a test stopped can still be closing its connection then (CI saw "1 other
    session" once in a few runs), and the database was left behind on the shared server. By the end
    every test and server is done, so what is still connected is cut off first.
    """
    yield
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Throttles and rate limits count from zero in each test: its cache keys get a prefix of their own."""
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}}


@pytest.fixture
def media(settings, tmp_path):
    """Each test stores its files in a folder of its own, so tests can look at what is there."""
    folder = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": folder}},
    }
    return folder


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    """A tiny untrained model with the colour-hint input, so hints go all the way through."""
    from mlcore.weights import save_untrained

    return save_untrained(tmp_path_factory.mktemp("weights") / "untrained.safetensors", ngf=8, hints=True)


@pytest.fixture(scope="session")
def hintless_weights_file(tmp_path_factory):
    """A tiny untrained model without the hint input, as the models shipped before hints."""
    from mlcore.weights import save_untrained

    return save_untrained(tmp_path_factory.mktemp("weights") / "hintless.safetensors", ngf=8)


@pytest.fixture
def colorizer(settings, weights_file):
    """A tiny untrained model at a small working size: the plumbing, fast on a CPU."""
    settings.COLORIZER_WEIGHTS = str(weights_file)
    settings.COLORIZER_DEVICE = "cpu"
    settings.COLORIZER_SIZE = 64


@pytest.fixture(scope="module")
def _running_worker():
    """A real worker (in a thread) on the configured broker, Redis or the filesystem one.

    Shared by a module's tests: it reads settings and the database only while running a task,
    so each test's own settings and data are what its jobs see. Stopped after the module, so
    that it cannot take messages meant for other workers (test_worker_crash.py).
    """
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=60, loglevel="WARNING"):
        yield


@pytest.fixture
def celery_worker(transactional_db, colorizer, _running_worker):
    yield
    # A message a test left behind must not reach the next test's database.
    celery_app.control.purge()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="correct horse battery")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="another good passphrase")
