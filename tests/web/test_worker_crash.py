"""A worker process killed in the middle of a job: the job is queued again, not lost."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from colorizer_site.celery import app as celery_app
from gallery import services, tasks
from gallery.models import ColorizationJob

from .helpers import image_bytes, wait_until_finished, worker_environment, worker_storage

pytestmark = pytest.mark.services

# Its own queue, so that the in-process test worker of other tests cannot take the message.
QUEUE = "crash-test"


def child_pids(pid):
    # Any thread may have started a child (the pool replaces lost processes from a thread).
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


@pytest.fixture
def worker_process(transactional_db, colorizer, settings, tmp_path):
    """`celery worker` as deployed (prefork pool, here one child process), on this run's broker."""
    # The worker's media folder is the settings' default (under the run's folder): use the same.
    settings.STORAGES = worker_storage(settings)
    environment = worker_environment(settings)
    celery_app.control.purge()
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "colorizer_site", "worker", "--pool=prefork", "--concurrency=1",
         f"--queues={QUEUE}", "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=INFO"],
        cwd=settings.BASE_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    yield worker
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    log.close()


def test_a_job_whose_worker_process_dies_is_queued_again(worker_process, alice, tmp_path):
    # Large enough that the first attempt is surely still running when its process is killed.
    photo = services.upload_photo(alice, SimpleUploadedFile("scan.png", image_bytes("PNG", size=(1600, 1200))))
    job = photo.jobs.get()
    tasks.colorize.apply_async([str(job.id)], queue=QUEUE)

    deadline = time.monotonic() + 120
    while ColorizationJob.objects.get(id=job.id).state != "running":
        assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
        time.sleep(0.05)
    [child] = child_pids(worker_process.pid)
    os.kill(child, signal.SIGKILL)

    [job] = wait_until_finished([job.id], timeout=120)
    assert (job.state, job.attempts) == ("succeeded", 2), (tmp_path / "worker.log").read_text()
    assert child not in child_pids(worker_process.pid)  # a fresh process did the second attempt


def test_the_worker_is_configured_not_to_lose_jobs():
    conf = celery_app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    if settings.REDIS_URL:
        # Redis hands an unacknowledged message out again after this: never during a legitimate run.
        assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
