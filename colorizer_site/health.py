"""Health endpoints for load balancers and orchestrators.

- `GET /healthz`: liveness. The process answers requests; nothing else is checked, so a
  database outage never gets web containers restarted.
- `GET /readyz`: readiness. The database, the Celery broker and the file storage answer and
  the model weights file is there; 503 otherwise. Load balancers send traffic only to ready
  containers. The answer names each check and whether it passed, nothing more: why one failed
  (host names, paths) goes to the log. It is worked out at most once every few seconds per
  process (READYZ_CACHE_SECONDS), so frequent probes, or anyone else, cannot make each web
  process query the database, the broker and the bucket at will.

Both are answered by a middleware that runs before any other: probes come by IP address
(no allowed host name), over plain HTTP (no HTTPS redirect) and without a session (no login).
"""

import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse

from .celery import app as celery_app

log = logging.getLogger(__name__)


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker():
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=0)


def check_storage():
    # Listing the top level needs the bucket and credentials that may read it (on S3).
    default_storage.listdir("")


def check_weights():
    path = settings.COLORIZER_WEIGHTS
    if path is None:
        # The default lives in mlcore, which imports torch; production always names the file.
        from mlcore.weights import DEFAULT_WEIGHTS as path
    if not Path(path).is_file():
        raise FileNotFoundError(f"model weights file not found: {path}")


CHECKS = {"database": check_database, "broker": check_broker, "storage": check_storage, "weights": check_weights}


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    checks = _readiness()
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


_last = {"at": None, "checks": None}
_lock = threading.Lock()


def _readiness():
    """{check name: "ok" or "failing"}, from the last few seconds when there is such a result."""
    with _lock:  # one thread of a process checks; the others wait for its answer
        if _last["at"] is None or time.monotonic() - _last["at"] >= settings.READYZ_CACHE_SECONDS:
            _last["checks"] = {name: _run(name, check) for name, check in CHECKS.items()}
            _last["at"] = time.monotonic()
        return _last["checks"]


def _run(name, check):
    try:
        check()
    except Exception:  # whatever stops a dependency from answering makes us not ready
        log.warning("readiness check %s failed", name, exc_info=True, extra={"check": name})
        return "failing"
    return "ok"


class HealthCheckMiddleware:
    ENDPOINTS = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = self.ENDPOINTS.get(request.path_info)
        return endpoint(request) if endpoint else self.get_response(request)
