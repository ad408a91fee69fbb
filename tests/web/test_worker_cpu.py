"""A worker shares its cores out among its pool processes, and an idle one looks for work often."""

import os
from types import SimpleNamespace

import pytest

from gallery import tasks


@pytest.mark.parametrize("concurrency, pool, cores, threads", [
    (2, "prefork", 2, 1),  # make run and a 2-core worker: 2 processes x 1 thread
    (1, "prefork", 2, 2),
    (4, "prefork", 16, 4),
    (8, "prefork", 2, 1),  # never less than one
    (None, "prefork", 8, 1),  # Celery's default: a process per core
    (2, "solo", 4, 4),  # one job at a time in the worker itself: every core
])
def test_processes_times_threads_is_the_cores(settings, concurrency, pool, cores, threads):
    settings.COLORIZER_TORCH_THREADS = None
    assert tasks.torch_threads(concurrency, pool, cores=cores) == threads


def test_the_setting_wins(settings):
    settings.COLORIZER_TORCH_THREADS = 3
    assert tasks.torch_threads(2, "prefork", cores=2) == 3


def test_the_worker_tells_its_pool_processes_before_starting_them(settings, monkeypatch):
    settings.COLORIZER_TORCH_THREADS = None
    for name in ("COLORIZER_TORCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})

    tasks._share_out_the_cores(sender=SimpleNamespace(concurrency=2, pool_cls="prefork"))

    assert os.environ["COLORIZER_TORCH_THREADS"] == os.environ["OMP_NUM_THREADS"] == "1"


def test_a_pool_process_gives_torch_its_share_when_it_loads_the_model(monkeypatch, weights_file):
    import torch

    from gallery import services

    before = torch.get_num_threads()
    monkeypatch.setenv("COLORIZER_TORCH_THREADS", "1")
    torch.set_num_threads(2)
    try:
        services._load_colorizer.__wrapped__(str(weights_file), "cpu", 32)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_embedded_broker_is_polled_at_least_ten_times_a_second(settings):
    if settings.REDIS_URL:
        pytest.skip("Redis pushes messages; only the embedded broker polls")
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] <= 0.1
