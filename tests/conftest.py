"""Rules shared by every test package."""

import os
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings


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
