"""Health endpoints for load balancers and orchestrators.

- `GET /healthz`: liveness. The process answers requests; nothing else is checked, so a
  database outage never gets web containers restarted.
- `GET /readyz`: readiness. The database, the Celery broker and the file storage answer and
  the model weights file is there; 503 with the failing checks otherwise. Load balancers
  send traffic only to ready containers.

Both are answered by a middleware that runs before any other: probes come by IP address
(no allowed host name), over plain HTTP (no HTTPS redirect) and without a session (no login).
"""

import time
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse

from gallery.services import describe_error

from .celery import app as celery_app


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
    results = {name: _run(check) for name, check in CHECKS.items()}
    ready = all(result["ok"] for result in results.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": results}, status=200 if ready else 503)


def _run(check):
    started = time.monotonic()
    try:
        check()
    except Exception as exc:  # whatever stops a dependency from answering makes us not ready
        result = {"ok": False, "error": describe_error(exc)}
    else:
        result = {"ok": True}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


class HealthCheckMiddleware:
    ENDPOINTS = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = self.ENDPOINTS.get(request.path_info)
        return endpoint(request) if endpoint else self.get_response(request)
