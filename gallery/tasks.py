from botocore.exceptions import BotoCoreError, ClientError
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings
from django.db import OperationalError

from . import services

# Worth another try: storage or network hiccups, a database that restarted. The job's
# attempt limit (COLORIZER_JOB_MAX_ATTEMPTS) decides when to stop, so retries are unbounded here.
TRANSIENT_ERRORS = (OSError, BotoCoreError, ClientError, OperationalError)


class ColorizeTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Reached for errors that are not transient and for the hard time limit (the worker
        # process was killed); a lost worker's message is re-queued instead of failing.
        if isinstance(exc, (SoftTimeLimitExceeded, TimeLimitExceeded)):
            reason = f"Colorizing took longer than the time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s)."
        else:
            reason = services.describe_error(exc)
        services.fail_job(args[0], reason)


@shared_task(
    base=ColorizeTask,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=None,
)
def colorize(job_id):
    services.run_job(job_id)


@shared_task
def requeue_stale_jobs():
    return [str(job_id) for job_id in services.requeue_stale_jobs()]
