"""gunicorn.conf.py: how the web server shares its work among its processes."""

import gc
import http.client
import os
import runpy
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .helpers import BASE_DIR, gunicorn

CONNECTIONS = 40


@pytest.fixture
def two_processes(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "colorizer_site.settings.test", "WEB_CONCURRENCY": "2"}
    server, url = gunicorn(env, tmp_path)
    server.wait_until_answering(f"{url}/healthz")
    # The first process may answer before the second has opened its socket; until then the
    # kernel has only one socket to give connections to.
    deadline = time.monotonic() + 30
    while _listening_sockets(urlsplit(url).port) < 2:
        assert time.monotonic() < deadline, f"gunicorn's second process is not listening\n{server.output()}"
        time.sleep(0.05)
    yield server, url
    server.stop()


def _listening_sockets(port):
    """How many sockets listen on this IPv4 port (Linux's /proc/net/tcp; state 0A is LISTEN)."""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for row in rows if row[1].endswith(f":{port:04X}") and row[3] == "0A")


def test_keep_alive_clients_are_spread_over_the_processes(two_processes):
    server, url = two_processes
    address = urlsplit(url)
    connections = [http.client.HTTPConnection(address.hostname, address.port, timeout=30) for _ in range(CONNECTIONS)]
    # All at once, as a crowd of clients (or a load balancer's pool) opens them.
    for connection in connections:
        connection.connect()
    for poll in range(2):
        # Every client asks, then every one reads its answer: busy clients, as a poller's are.
        # Idle ones, used one at a time, would wait in line: gunicorn's threads give a new
        # connection's first request up to 5 s each before putting it aside.
        for number, connection in enumerate(connections):
            connection.request("GET", "/healthz", headers={"X-Request-ID": f"{number}-{poll}"})
        for connection in connections:
            assert connection.getresponse().read() == b'{"status": "ok"}'
    for connection in connections:
        connection.close()
    server.stop()

    pids = {line["request_id"]: line["pid"] for line in server.log_lines() if line.get("request_id")}
    # Each connection stays with one process; the connections are spread over both (a split
    # beyond 30/10 has odds of about 1 in 1,500 when the kernel spreads them at random).
    assert all(pids[f"{number}-0"] == pids[f"{number}-1"] for number in range(CONNECTIONS))
    per_process = Counter(pids[f"{number}-0"] for number in range(CONNECTIONS))
    assert len(per_process) == 2 and max(per_process.values()) <= 30, per_process


def test_the_master_loads_and_freezes_the_app_before_forking():
    config = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    assert config["preload_app"]

    config["when_ready"](server=None)
    try:
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
