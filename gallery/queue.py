"""Sending colorization jobs to the workers: the one place that talks to the broker.

A job is a row first and a message second. The row is committed with `sent_at` empty; once it
is committed its message is published and `sent_at` set. When the broker is down (or does not
answer within its timeouts) the job simply stays unsent: nothing fails, nothing is deleted, the
user sees "Queued", and the sweeper (`gallery.tasks.sweep_jobs`, run by beat) sends it later.
Sending a job twice is harmless: a run claims its job first, and a second delivery of a job
that is running or finished does nothing (gallery.services.run_job).

Services (uploads, "colorize again"), the Celery task's retries and the sweeper use this
module; it imports neither of them, so neither imports the other.
"""

import logging

from django.db import transaction
from django.utils import timezone

from colorizer_site.breaker import Breaker
from colorizer_site.celery import app as celery_app

from .models import ColorizationJob

COLORIZE_TASK = "gallery.tasks.colorize"
log = logging.getLogger("gallery.queue")

# A failed publish pauses publishing in this process for a few seconds: a broker that does not
# answer then costs one timeout, not one per upload. The jobs stay unsent for the sweeper.
breaker = Breaker("The broker", pause_seconds=5, logger=log)


def publish_on_commit(job_ids):
    """Send the jobs once the current transaction commits (a worker can only find committed rows)."""
    job_ids = [str(job_id) for job_id in job_ids]
    # robust: whatever happens, the commit has happened and the request carries on.
    transaction.on_commit(lambda: publish(job_ids), robust=True)


def publish(job_ids):
    """Send each job's message and note it as sent; returns the ids that were sent.

    Never raises for a broker that is down: the jobs not sent keep `sent_at` empty.
    """
    sent = []
    for job_id in job_ids:
        if breaker.is_open:
            break
        try:
            # No retries: a connection the broker dropped is replaced when taken from the pool,
            # and REDIS_TIMEOUT bounds a broker that does not answer (one wait, not several).
            celery_app.send_task(COLORIZE_TASK, args=[str(job_id)], retry=False)
        except Exception as exc:  # any broker or network failure: the sweeper will send it
            breaker.failed(exc, "jobs stay queued and the sweeper sends them once it is back")
            break
        breaker.succeeded()
        sent.append(str(job_id))
    if len(sent) < len(job_ids):
        log.info("%d of %d jobs not sent to the broker yet (the sweeper will)", len(job_ids) - len(sent),
                 len(job_ids), extra={"job_ids": [str(job_id) for job_id in job_ids if str(job_id) not in sent]})
    if sent:
        mark_sent(sent)
    return sent


def mark_sent(job_ids):
    ColorizationJob.objects.filter(pk__in=job_ids, state=ColorizationJob.State.QUEUED).update(sent_at=timezone.now())


def mark_unsent(job_ids):
    ColorizationJob.objects.filter(pk__in=job_ids, state=ColorizationJob.State.QUEUED).update(sent_at=None)


def waiting_count():
    """Messages waiting in the colorize queue (not counting those workers hold), or None if unknown."""
    if breaker.is_open:
        return None
    queue = celery_app.amqp.router.route({}, COLORIZE_TASK)["queue"].name
    try:
        with celery_app.connection_for_write() as connection:
            # Both brokers here (Redis, the filesystem one) are kombu virtual transports, whose
            # channels count a queue's messages; a passive queue_declare would too, but Redis's
            # misses a queue under a global key prefix.
            return connection.default_channel._size(queue)
    except Exception as exc:
        breaker.failed(exc, "queued jobs are not re-sent")
        return None

