"""Photos on S3: moto's S3 server on a loopback port stands in for the real service."""

import io
import runpy
import socket
import urllib.error
import urllib.request

import boto3
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from moto.server import ThreadedMotoServer
from PIL import Image

from gallery import services

from .helpers import image_bytes, wait_until_finished

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("celery_worker")]

BUCKET = "colorizer-photos"


@pytest.fixture(scope="module")
def s3_endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch):
    """The storage settings base.py derives from the S3 environment variables, in force."""
    environment = {
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_S3_REGION_NAME": "us-east-1",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = runpy.run_path(str(settings.BASE_DIR / "colorizer_site" / "settings" / "base.py"))["STORAGES"]
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client):
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_photos_and_results_live_privately_in_the_bucket(bucket, s3_endpoint, alice, client):
    data = image_bytes("JPEG", size=(90, 60))
    # Named and typed by what it is, not by what the name says.
    photo = services.upload_photo(alice, SimpleUploadedFile("scan.html", data))

    [job] = wait_until_finished([photo.jobs.get().id])

    assert job.state == "succeeded", job.error
    assert job.palette  # the eyedropper's colours are stored with the result
    photo.refresh_from_db()
    assert keys(bucket) == sorted([photo.original.name, photo.preview.name, *job.files])
    assert photo.original.name == f"originals/{photo.id}.jpg"
    stored = (photo.original, photo.preview, job.result, job.thumbnail, job.preview, job.palette)
    content_types = [bucket.head_object(Bucket=BUCKET, Key=f.name)["ContentType"] for f in stored]
    assert content_types == ["image/jpeg", "image/jpeg", "image/png", "image/jpeg", "image/jpeg", "image/png"]
    assert bucket.get_object(Bucket=BUCKET, Key=photo.original.name)["Body"].read() == data
    for key in keys(bucket):
        grants = bucket.get_object_acl(Bucket=BUCKET, Key=key)["Grants"]
        assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]  # the owner's only
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{s3_endpoint}/{BUCKET}/{key}")
        assert refused.value.code == 403

    # Any URL the storage hands out is signed and expires.
    signed = default_storage.url(job.result.name)
    assert "Signature=" in signed and "Expires=" in signed
    assert urllib.request.urlopen(signed).read() == bucket.get_object(Bucket=BUCKET, Key=job.result.name)["Body"].read()

    # The owner's views stream from the bucket.
    client.force_login(alice)
    result = client.get(f"/photos/{photo.id}/result.png")
    assert Image.open(io.BytesIO(b"".join(result.streaming_content))).size == (90, 60)
    assert b"".join(client.get(f"/photos/{photo.id}/original").streaming_content) == data


def test_deleting_a_photo_empties_the_bucket(bucket, alice):
    photo = services.upload_photo(alice, SimpleUploadedFile("scan.png", image_bytes("PNG")))
    wait_until_finished([photo.jobs.get().id])
    assert len(keys(bucket)) == 6  # the original and its preview; the result, its preview, thumbnail and colour proposals

    services.delete_photo(photo)

    assert keys(bucket) == []
