"""Requests per second and latency of a running stack's web servers under many clients:
`make bench-web`, or

    manage.py bench_web --url http://127.0.0.1:8000 --clients 50 --seconds 15
    manage.py bench_web --url https://colorizer.example --token TOKEN --clients 20

Starts nothing and changes nothing: it reads the photos the token's user already has (`make bench
BENCH_ARGS=--keep` leaves some). It loads, one after the other and each for --seconds, what apps
ask for most: their newest job, polled as a client does after its first poll (If-None-Match with
the ETag it got: 304) and as a plain GET (200), and the photo list (the first page). --clients
keep-alive connections each send a request as soon as the previous answer is read, from
--processes processes of threads (http.client: little CPU, so that a client on the server's
machine takes little from it). Prints requests/s, the median, 95th and 99th percentile latency
and the errors of each, the CPU the client used, and for a stack on this machine (started in
this folder) the web server's CPU per request.

Without --token it uses --user's (default "bench"), creating that user and its token in this
settings' database, as bench_stack does.
"""
import concurrent.futures
import http.client
import json
import os
import threading
import time
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from ..local_stack import cpu_used, local_cpu, local_token, percentile


class Command(BaseCommand):
    help = "Load a running stack's job polling and photo list with N keep-alive clients; print req/s and latencies."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the stack's address")
        parser.add_argument("--clients", type=int, default=50, help="connections, each one request at a time")
        parser.add_argument("--seconds", type=float, default=15, help="how long each endpoint is loaded")
        parser.add_argument("--processes", type=int, default=2, help="client processes the connections are shared by")
        parser.add_argument("--token", help="an API token (default: --user's, made in this database)")
        parser.add_argument("--user", default="bench")

    def handle(self, *args, **opts):
        if min(opts["clients"], opts["processes"]) < 1 or opts["seconds"] <= 0:
            raise CommandError("--clients, --processes and --seconds must be positive")
        target = Target(opts["url"], opts["token"] or local_token(opts["user"]))
        photos = json.loads(target.get_ok("/photos/")[1])
        if not photos["results"]:
            raise CommandError(f"the token's user has no photos at {opts['url']}: upload some first "
                               "(`make bench BENCH_ARGS=--keep` leaves 40)")
        job = photos["results"][0]["job"]
        job_path = f"/jobs/{job['id']}/"
        etag = target.get_ok(job_path)[0].getheader("ETag")
        loads = [
            ("job poll, If-None-Match (304)", job_path, {"If-None-Match": etag}, 304),
            ("job poll, plain GET (200)", job_path, {}, 200),
            (f"photo list, page of {len(photos['results'])} (200)", "/photos/", {}, 200),
        ]
        processes = min(opts["processes"], opts["clients"])
        self.stdout.write(
            f"{opts['clients']} keep-alive clients ({processes} processes of threads), {opts['seconds']:g} s per "
            f"endpoint, to {opts['url']}; job {job['id']} ({job['state']}); load average {os.getloadavg()[0]:.1f} "
            f"on {len(os.sched_getaffinity(0))} CPUs at start")
        self.stdout.write("| endpoint | req/s | p50 ms | p95 ms | p99 ms | errors | client CPU | web CPU per request |")
        self.stdout.write("|---" * 8 + "|")
        with concurrent.futures.ProcessPoolExecutor(processes) as pool:
            for name, path, headers, status in loads:
                self._run(pool, target, name, path, headers, status, opts["clients"], processes, opts["seconds"])

    def _run(self, pool, target, name, path, headers, status, clients, processes, seconds):
        shares = [clients // processes + (i < clients % processes) for i in range(processes)]
        web_before = local_cpu()
        results = list(pool.map(_load, [target] * processes, [path] * processes, [headers] * processes,
                                [status] * processes, shares, [seconds] * processes))
        web_used = cpu_used(web_before, local_cpu(), "web")
        latencies = sorted(latency for result in results for latency in result["latencies"])
        errors = [error for result in results for error in result["errors"]]
        elapsed = max(result["elapsed"] for result in results)
        requests = len(latencies) + len(errors)
        client_cpu = sum(result["cpu"] for result in results)
        percentiles = " | ".join(f"{percentile(latencies, p) * 1000:.1f}" for p in (50, 95, 99))
        web = f"{web_used / requests * 1000:.2f} ms" if web_used and requests else "n/a (no server from this folder here)"
        self.stdout.write(f"| {name} | {len(latencies) / elapsed:.0f} | {percentiles} | {len(errors)} "
                          f"| {client_cpu / elapsed:.2f} cores | {web} |")
        if errors:
            self.stdout.write(f"  first error: {errors[0]}")


class Target:
    """The API of a stack: its address and the headers every request carries."""

    def __init__(self, url, token):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"--url must be an http:// or https:// address, not {url!r}")
        self.scheme, self.netloc, self.root = parts.scheme, parts.netloc, parts.path.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"Token {token}"}

    def connect(self):
        connection_class = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        return connection_class(self.netloc, timeout=60)

    def get(self, path, headers=(), connection=None):
        """The answer to GET path and its body; on `connection` when given (it stays open)."""
        own = connection or self.connect()
        try:
            own.request("GET", self.root + path, headers={**self.headers, **dict(headers)})
            response = own.getresponse()
            return response, response.read()
        finally:
            if connection is None:
                own.close()

    def get_ok(self, path):
        response, body = self.get(path)
        if response.status != 200:
            raise CommandError(f"GET {self.root}{path}: {response.status} {body[:300]!r}")
        return response, body


def _load(target, path, headers, status, clients, seconds):
    """In a client process: `clients` threads, each on its own connection, sending GET path until
    `seconds` have passed. Latencies of the answers with `status`, and each other answer or error."""
    latencies, errors = [], []  # list.append is atomic: the threads share them
    cpu, begun = time.process_time(), time.perf_counter()
    deadline = begun + seconds

    def client():
        connection = target.connect()  # connects on the first request
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                response, body = target.get(path, headers, connection)
            except (OSError, http.client.HTTPException) as error:
                errors.append(f"{type(error).__name__}: {error}")
                connection.close()  # the next request opens a new connection
                continue
            if response.status == status:
                latencies.append(time.perf_counter() - sent)
            else:
                errors.append(f"{response.status} {body[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "errors": errors, "elapsed": time.perf_counter() - begun,
            "cpu": time.process_time() - cpu}
