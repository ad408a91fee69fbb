"""Production: base.py with the servers required, HTTPS enforced and JSON logs.

Every value still comes from the environment (.env.example documents them all), but nothing
falls back to the laptop defaults: no SQLite, no filesystem broker, no local media folder, no
development secret key. A missing variable stops the process at start with its name.
Passes `manage.py check --deploy` without a warning.
"""

import logging

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import KNOWN_SECRET_KEYS, MIDDLEWARE, STORAGES, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
if SECRET_KEY in KNOWN_SECRET_KEYS:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is a published example: set it to a secret of your own")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

# Web containers, workers and beat run on several machines: they share PostgreSQL, Redis and
# a bucket. base.py falls back to SQLite, a filesystem broker and a local folder without them;
# here reading them without a default stops the process when one is missing.
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A database that does not answer must fail a request (and /readyz) quickly, not hang it.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
env("REDIS_URL")
env("AWS_STORAGE_BUCKET_NAME")
# Same for the bucket (and a storage that stops answering mid-transfer); standard retries
# still ride out a brief hiccup.
STORAGES["default"]["OPTIONS"]["client_config"] = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard"}
)

# --- HTTPS -------------------------------------------------------------------------------
# TLS ends at the load balancer, which must set X-Forwarded-Proto (and overwrite any value a
# client sent). DJANGO_HTTPS=false only to try the stack on http://localhost.
if env.bool("DJANGO_HTTPS", default=True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)

# --- Static files ------------------------------------------------------------------------
# Served by the web containers themselves (whitenoise): names carry a hash of the content, so
# browsers may cache them forever. `collectstatic` runs when the image is built.
MIDDLEWARE = [*MIDDLEWARE]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                  "whitenoise.middleware.WhiteNoiseMiddleware")
STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}

# --- Logs --------------------------------------------------------------------------------
# One JSON object per line on stdout, for the container runtime to collect. Python warnings
# (deprecations, Celery's) go through logging as well, instead of as bare text on stderr.
logging.captureWarnings(True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "colorizer_site.jsonlog.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
}
# Celery workers log through the handler above instead of installing their own text format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False
