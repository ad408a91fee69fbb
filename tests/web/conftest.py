import pytest
from celery.contrib.testing.worker import start_worker
from colorizer_site.celery import app as celery_app


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test stores its files in a folder of its own, so tests can look at what is there."""
    folder = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": folder}},
    }
    return folder


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    from mlcore.weights import save_untrained

    return save_untrained(tmp_path_factory.mktemp("weights") / "untrained.safetensors")


@pytest.fixture
def colorizer(settings, weights_file):
    """A tiny untrained model at a small working size: the plumbing, fast on a CPU."""
    settings.COLORIZER_WEIGHTS = str(weights_file)
    settings.COLORIZER_DEVICE = "cpu"
    settings.COLORIZER_SIZE = 64


@pytest.fixture(scope="session")
def _running_worker():
    """A real worker (in a thread) on the configured broker, Redis or the filesystem one.

    Started once: it reads settings and the database only while running a task, so each test's
    own settings and data are what its jobs see.
    """
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=60, loglevel="WARNING"):
        yield


@pytest.fixture
def celery_worker(transactional_db, colorizer, _running_worker):
    yield
    # A message a test left behind must not reach the next test's database.
    celery_app.control.purge()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="correct horse battery")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="another good passphrase")
