"""/healthz and /readyz, with each dependency up and then down (a closed loopback port, a
missing file). On the configured servers: SQLite and the filesystem broker in the first pass
of `make test`, PostgreSQL and Redis in the second."""

import logging

import pytest
from django.db import connection

from colorizer_site import health
from colorizer_site.celery import app as celery_app

from .helpers import free_port

pytestmark = pytest.mark.services

CHECKS = {"database", "broker", "storage", "weights"}


@pytest.fixture(autouse=True)
def _fresh_readiness(monkeypatch):
    """Each test's probe checks for itself, not the answer a previous test left for a few seconds."""
    monkeypatch.setitem(health._last, "at", None)


@pytest.fixture
def everything_up(media, colorizer):
    media.mkdir()  # a local storage folder that exists (it is created by the first upload)


@pytest.fixture
def database_down(transactional_db, monkeypatch, tmp_path):
    # transactional_db: no test transaction holds the connection open, so it can be cut.
    connection.close()
    if connection.vendor == "sqlite":
        monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "missing" / "db.sqlite3"))
    else:
        monkeypatch.setitem(connection.settings_dict, "PORT", free_port())
    yield
    monkeypatch.undo()
    connection.close()  # the next test connects to the real database again


@pytest.fixture
def broker_down(monkeypatch):
    monkeypatch.setattr(celery_app.conf, "broker_url", f"redis://127.0.0.1:{free_port()}/0")


@pytest.fixture
def storage_down(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "colorizer",
                "endpoint_url": f"http://127.0.0.1:{free_port()}",
                "access_key": "key",
                "secret_key": "secret",
                "region_name": "us-east-1",
            },
        },
    }


@pytest.fixture
def weights_missing(settings, tmp_path):
    settings.COLORIZER_WEIGHTS = str(tmp_path / "missing.safetensors")


def test_healthz_answers_probes_that_pages_would_refuse(client, settings):
    """Probes come by IP, over plain HTTP, without a session; pages refuse all three."""
    settings.ALLOWED_HOSTS = ["colorizer.example"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8000")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert client.get("/", HTTP_HOST="10.0.0.7:8000").status_code == 400
    assert client.get("/", HTTP_HOST="colorizer.example").status_code == 301


def test_healthz_does_not_depend_on_anything(client, database_down, broker_down, storage_down, weights_missing):
    assert client.get("/healthz").status_code == 200


@pytest.mark.django_db
def test_ready_when_every_dependency_answers(client, everything_up, settings):
    settings.ALLOWED_HOSTS = ["colorizer.example"]
    settings.SECURE_SSL_REDIRECT = True

    response = client.get("/readyz", HTTP_HOST="10.0.0.7:8000")

    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "ready", "checks": dict.fromkeys(CHECKS, "ok")}


@pytest.mark.django_db
def test_readiness_is_checked_once_every_few_seconds(client, everything_up, settings):
    settings.READYZ_CACHE_SECONDS = 60
    assert client.get("/readyz").status_code == 200

    settings.COLORIZER_WEIGHTS = "/nowhere/missing.safetensors"

    assert client.get("/readyz").status_code == 200  # the answer of a moment ago
    settings.READYZ_CACHE_SECONDS = 0
    assert client.get("/readyz").status_code == 503


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("down", "failing", "detail"),
    [
        ("database_down", "database", "OperationalError"),
        ("broker_down", "broker", "OperationalError"),
        ("storage_down", "storage", "EndpointConnectionError"),
        ("weights_missing", "weights", "FileNotFoundError: model weights file not found"),
    ],
)
def test_not_ready_while_a_dependency_is_down(request, client, everything_up, caplog, down, failing, detail):
    request.getfixturevalue(down)

    with caplog.at_level(logging.WARNING, logger="colorizer_site.health"):
        response = client.get("/readyz")

    assert response.status_code == 503
    # Which check failed, by name: the others still say what they found.
    assert response.json() == {"status": "not ready", "checks": {**dict.fromkeys(CHECKS, "ok"), failing: "failing"}}
    # Why, with host names and paths, is for the log only.
    [record] = [record for record in caplog.records if getattr(record, "check", None) == failing]
    assert detail in caplog.text
    assert "127.0.0.1" not in response.text and "Error" not in response.text and record.exc_info
