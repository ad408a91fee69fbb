import os

from celery import Celery

from . import broker  # noqa: F401  registers the embedded broker's URL scheme

# Workers are deployments unless told otherwise (`make run` names the development settings).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "colorizer_site.settings.production")

app = Celery("colorizer_site")
# All Celery configuration lives in Django settings as CELERY_* names.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
