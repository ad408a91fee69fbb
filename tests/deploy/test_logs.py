"""Structured logs: one JSON line per request (gunicorn's access log) and per job run.

On the default settings (no PostgreSQL or Redis); test_cluster.py finds the same lines in the
output of the production stack.
"""

import json
import logging
import os
import sys
from datetime import datetime

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from colorizer_site.jsonlog import JsonFormatter
from gallery import services, tasks

from .helpers import grey_png, gunicorn


def job_lines(caplog):
    return [json.loads(JsonFormatter().format(record)) for record in caplog.records if record.name == "gallery.jobs"]


@pytest.fixture
def photo(db, media, colorizer, alice):
    # The `db` fixture never commits, so nothing is queued: the test runs the task itself.
    return services.upload_photo(alice, SimpleUploadedFile("scan.png", grey_png((40, 30))))


def test_a_job_logs_one_line_with_its_outcome(photo, caplog):
    caplog.set_level(logging.INFO, logger="gallery.jobs")
    job = photo.jobs.get()

    tasks.colorize.apply([str(job.id)])

    [line] = job_lines(caplog)
    assert line["logger"] == "gallery.jobs" and line["level"] == "INFO"
    assert (line["job_id"], line["photo_id"]) == (str(job.id), str(photo.id))
    assert (line["task_state"], line["state"], line["attempts"], line["error"]) == ("success", "succeeded", 1, "")
    assert line["model_version"] == photo.jobs.get().model_version != ""
    assert line["duration_ms"] > 0
    assert line["message"] == f"job {job.id} succeeded after {line['duration_ms']:.0f} ms (task success)"
    datetime.fromisoformat(line["time"])


def test_a_failed_job_logs_why(photo, settings, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gallery.jobs")
    settings.COLORIZER_WEIGHTS = str(tmp_path / "missing.safetensors")
    job = photo.jobs.get()

    tasks.colorize.apply([str(job.id)])

    # The exception for operators, by the job's id; the outcome with the reason its owner sees.
    [failure, line] = job_lines(caplog)
    assert (failure["level"], failure["job_id"], failure["photo_id"]) == ("ERROR", str(job.id), str(photo.id))
    assert "WeightsError: weights file not found" in failure["exception"]
    assert (line["task_state"], line["state"], line["attempts"]) == ("failure", "failed", 1)
    assert line["error"] == "Something went wrong on our side while colorizing this photo."


@pytest.fixture
def web(tmp_path):
    server, url = gunicorn({**os.environ, "DJANGO_SETTINGS_MODULE": "colorizer_site.settings.test"}, tmp_path)
    server.wait_until_answering(f"{url}/healthz")
    yield server, url
    server.stop()


def test_a_request_logs_one_json_line(web):
    server, url = web

    requests.get(f"{url}/healthz?probe=1", headers={"X-Request-ID": "req-42", "X-Forwarded-For": "203.0.113.9"})
    server.stop()

    lines = server.log_lines()  # all of gunicorn's output, each line JSON
    [entry] = [line for line in lines if line.get("request_id") == "req-42"]
    # Logged by a worker process, not by the arbiter.
    assert entry.pop("time") and entry.pop("duration_ms") > 0 and entry.pop("pid") != server.process.pid
    assert entry == {
        "level": "INFO",
        "logger": "gunicorn.access",
        "message": "GET /healthz 200",
        "method": "GET",
        "path": "/healthz",
        "query": "probe=1",
        "status": 200,
        "bytes": len(b'{"status": "ok"}'),
        "remote_addr": "127.0.0.1",
        "forwarded_for": "203.0.113.9",
        "request_id": "req-42",
        "user_agent": f"python-requests/{requests.__version__}",
    }
    assert any(line["logger"] == "gunicorn.error" and line["message"].startswith("Booting worker") for line in lines)


def test_exceptions_and_odd_extras_still_make_one_json_line():
    logger = logging.getLogger("test")
    try:
        raise ValueError("bad pixel\non two lines")
    except ValueError:
        record = logger.makeRecord("test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info(), extra={"photo": object()})

    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["photo"].startswith("<object object")
    assert entry["exception"].startswith("Traceback") and "ValueError: bad pixel" in entry["exception"]
