"""Gunicorn settings for the web containers (gunicorn reads ./gunicorn.conf.py by itself).

Each value can be changed from the environment; .env.example lists them.
"""

import gc
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"

# A process per core this container may use (not the host's), each with threads. An API
# request is a few milliseconds of Python (the GIL: one at a time per process) and some waiting
# on PostgreSQL and S3, which the threads overlap; a slow upload holds a thread, not a process.
# The usual 2 x cores + 1 processes made 5 processes x 4 threads share 2 cores: requests waited
# on each other's time slices (p99 of job polls ~1 s at 50 clients), for no more throughput.
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, len(os.sched_getaffinity(0)))))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
# Each process listens on a socket of its own (SO_REUSEPORT), and the kernel spreads new
# connections evenly over them. On one shared socket whichever process woke first took them: 50
# keep-alive clients split 40/10, and the process with 40 (one core at most, for the GIL) gave
# them a p99 of ~300 ms while the other idled. A recycled process's queued connections move to the
# others only where net.ipv4.tcp_migrate_req is 1 (docs/deploy.md).
reuse_port = True

# A request may decode a 50-megapixel image (upload checks, JPEG downloads): seconds, not
# minutes.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 120))
graceful_timeout = 30
# Longer than the load balancer's idle timeout (often 60 s), so that it closes idle
# connections first and never sends a request on one gunicorn has just closed.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 75))
# Django is loaded once, in the master (when_ready below warms the rest), and each process is
# forked from it: a process that starts anew costs a fork, not a second of CPU importing Django
# and the first requests loading the URLs, views and API.
preload_app = True
# Recycle processes now and then, so that a slow leak (image buffers) never adds up. Not too
# often: job polls come by the hundred per second and leak nothing, and a process that leaves
# closes its keep-alive connections, whose clients then crowd onto the other processes (at 2,000
# requests that happened every few seconds under polling load).
max_requests = 20000
max_requests_jitter = 2000

# One JSON line per request on stdout; gunicorn's own messages in JSON on stderr.
accesslog = "-"
errorlog = "-"
logger_class = "colorizer_site.jsonlog.GunicornLogger"


def when_ready(server):
    """In the master, after the app is loaded and before any process is forked from it."""
    from django.urls import get_resolver

    # Imports every view (the API, its schema) now, so no process pays for it on its first request.
    get_resolver().url_patterns
    # What is loaded now stays: the collector no longer scans it (a full collection of Django's
    # objects took 50-60 ms in the middle of a request), and forked processes share
    # its memory pages instead of copying them as the collector touches them.
    gc.freeze()
