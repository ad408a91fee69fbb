"""Gunicorn settings for the web containers (gunicorn reads ./gunicorn.conf.py by itself).

Each value can be changed from the environment; .env.example lists them.
"""

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

# A request may decode a 50-megapixel image (upload checks, JPEG downloads): seconds, not
# minutes.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 120))
graceful_timeout = 30
# Longer than the load balancer's idle timeout (often 60 s), so that it closes idle
# connections first and never sends a request on one gunicorn has just closed.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 75))
# Recycle processes now and then, so that a slow leak (image buffers) never adds up.
max_requests = 2000
max_requests_jitter = 200

# One JSON line per request on stdout; gunicorn's own messages in JSON on stderr.
accesslog = "-"
errorlog = "-"
logger_class = "colorizer_site.jsonlog.GunicornLogger"
