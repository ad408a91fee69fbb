import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from gallery import services
from web.helpers import image_bytes


@pytest.fixture(autouse=True)
def _own_media(media):
    """Every API test stores its files in a folder of its own (see `media`)."""


def client_of(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def as_alice(alice):
    return client_of(alice)


@pytest.fixture
def as_bob(bob):
    return client_of(bob)


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def photo(alice, colorizer):
    """Alice's photo, colorized (the job is run here, as the worker would run it)."""
    photo = services.upload_photo(alice, SimpleUploadedFile("grandma.jpg", image_bytes("JPEG", size=(90, 60))))
    services.run_job(photo.jobs.get().id)
    return photo


def upload_file(name="scan.png", data=None, content_type="image/png"):
    return SimpleUploadedFile(name, image_bytes("PNG") if data is None else data, content_type=content_type)
