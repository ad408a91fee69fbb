import logging
import os
import resource
import socket
import time

from botocore.exceptions import BotoCoreError, ClientError
from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_postrun, task_prerun, worker_init
from django.conf import settings
from django.db import DatabaseError, OperationalError
from PIL import UnidentifiedImageError

from . import queue, services
from .models import ColorizationJob

job_log = logging.getLogger("gallery.jobs")  # one line per run, below
log = logging.getLogger(__name__)

# Worth another try: storage or network hiccups, a database that restarted. The job's
# attempt limit (COLORIZER_JOB_MAX_ATTEMPTS) decides when to stop, so retries are unbounded here.
TRANSIENT_ERRORS = (OSError, BotoCoreError, ClientError, OperationalError)
# OSErrors that another try cannot mend: a stored original Pillow cannot read.
PERMANENT_ERRORS = (UnidentifiedImageError,)


class ColorizeTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        # Reached for errors that are not transient and for the soft time limit. A lost
        # worker's job is queued again instead (the message comes back, or its lease runs out).
        if isinstance(exc, (SoftTimeLimitExceeded, TimeLimitExceeded)):
            reason = f"Colorizing took longer than the time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s)."
        elif isinstance(exc, services.CannotColorize):
            reason = exc.message
        else:
            reason = services.describe_error(exc)
        # The user reads the reason; the traceback is in the log already (services.run_job).
        log.warning("job %s failed: %s", args[0], reason, extra={"job_id": args[0]})
        services.fail_job(args[0], reason)

    def retry(self, *args, **kwargs):
        try:
            return super().retry(*args, **kwargs)
        except Reject:
            # The retry's message could not be sent (the broker is down): the sweeper sends it.
            queue.mark_unsent([self.request.args[0]])
            raise


@shared_task(
    bind=True,
    base=ColorizeTask,
    autoretry_for=TRANSIENT_ERRORS,
    dont_autoretry_for=PERMANENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=None,
)
def colorize(self, job_id):
    # The lease holder: this worker (its node name) and pool process.
    services.run_job(job_id, holder=f"{self.request.hostname or socket.gethostname()}:{os.getpid()}")


# Acknowledged on receipt: a sweep is idempotent, and a worker should hold no unacknowledged
# message of its own when Redis goes away (kombu 5.7 then fails to restore it and stops the
# worker, which its supervisor restarts).
@shared_task(acks_late=False)
def sweep_jobs():
    """Send jobs the broker never got and queue again those whose worker died (beat, every few seconds)."""
    return services.sweep_jobs()


# One log line per run of a colorize task, with the job's outcome as fields (JSON in production).
_run_started = {}


@task_prerun.connect
def _note_job_start(task_id, task, **kwargs):
    if task.name == colorize.name:
        _run_started[task_id] = time.monotonic()


@task_postrun.connect
def _log_job_run(task_id, task, args, state, **kwargs):
    # Sent after on_failure, so a job that failed for good already says so in the database.
    if task.name != colorize.name:
        return
    job_id = args[0]
    fields = {
        "job_id": job_id,
        "task_id": task_id,
        "task_state": state.lower(),  # how this run ended: success, retry or failure
        "duration_ms": round((time.monotonic() - _run_started.pop(task_id)) * 1000, 1),
        "queue": (task.request.delivery_info or {}).get("routing_key"),
        "worker": task.request.hostname,
        "peak_rss_mb": peak_rss_mb(),
    }
    columns = ("photo_id", "state", "attempts", "model_version", "error")
    try:
        fields.update(ColorizationJob.objects.filter(pk=job_id).values(*columns).first() or {"state": "deleted"})
    except DatabaseError:  # the outage this run may have been retried for
        fields["state"] = "unknown"
    job_log.info("job %s %s after %.0f ms (task %s)", job_id, fields["state"], fields["duration_ms"],
                 fields["task_state"], extra=fields)


# --- CPU: pool processes x torch threads = cores ------------------------------------------
# torch starts one thread per core in every process: N pool processes on N cores then run N^2
# threads that take turns (a 1 MP photo: 0.9 CPU-s instead of 0.25). The worker's main process
# decides, before it starts its pool, how many threads each pool process gets.
worker_log = logging.getLogger("gallery.worker")


def torch_threads(concurrency, pool="prefork", cores=None):
    """Threads for torch in each pool process: the cores shared out among the processes."""
    if settings.COLORIZER_TORCH_THREADS:
        return settings.COLORIZER_TORCH_THREADS
    cores = cores or len(os.sched_getaffinity(0))
    processes = 1 if pool == "solo" else max(1, concurrency or cores)
    return max(1, cores // processes)


@worker_init.connect
def _share_out_the_cores(sender=None, **kwargs):
    pool = getattr(sender, "pool_cls", "prefork")  # a name here, or already the class
    pool = pool if isinstance(pool, str) else pool.__module__.rsplit(".", 1)[-1]
    concurrency = getattr(sender, "concurrency", None)
    threads = torch_threads(concurrency if isinstance(concurrency, int) else None, pool)
    # Inherited by the pool processes (forked, or started anew): OpenMP and MKL read these when
    # torch is first imported, and gallery.services sets torch itself when it loads the model
    # (not at process start: importing torch there could outlast Celery's wait for a new process).
    os.environ["COLORIZER_TORCH_THREADS"] = str(threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
    worker_log.info("torch uses %d thread(s) in each of the %s pool process(es)", threads,
                    getattr(sender, "concurrency", "?"))


def peak_rss_mb():
    """This process's peak resident memory so far, in MB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
