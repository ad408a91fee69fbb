"""Who may call what: the owner, another user (404, as if nothing were there) and nobody (401)."""

import pytest
from rest_framework.test import APIClient

from gallery.models import ColorizationJob, Photo

from .conftest import upload_file

pytestmark = pytest.mark.django_db

# (method, URL, the owner's status); {photo} and {job} are Alice's.
OWNED_ENDPOINTS = [
    ("get", "/api/v1/photos/{photo}/", 200),
    ("delete", "/api/v1/photos/{photo}/", 204),
    ("post", "/api/v1/photos/{photo}/colorize/", 202),
    ("get", "/api/v1/photos/{photo}/original", 200),
    ("get", "/api/v1/photos/{photo}/result", 200),
    ("get", "/api/v1/photos/{photo}/palette/?x=1&y=1", 200),
    ("get", "/api/v1/jobs/{job}/", 200),
]
EVERY_ENDPOINT = [("get", "/api/v1/photos/", 200), ("post", "/api/v1/photos/", 202), *OWNED_ENDPOINTS]


def call(client, method, url, photo):
    url = url.format(photo=photo.id, job=photo.jobs.get().id)
    data = {"image": upload_file()} if (method, url) == ("post", "/api/v1/photos/") else None
    return getattr(client, method)(url, data)


@pytest.mark.parametrize(("method", "url", "expected"), EVERY_ENDPOINT)
def test_the_owner_may(as_alice, photo, method, url, expected):
    assert call(as_alice, method, url, photo).status_code == expected


@pytest.mark.parametrize(("method", "url", "expected"), OWNED_ENDPOINTS)
def test_another_user_finds_nothing(as_bob, photo, method, url, expected):
    response = call(as_bob, method, url, photo)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Photo.objects.filter(id=photo.id).exists()
    assert [job.state for job in ColorizationJob.objects.all()] == ["succeeded"]


def test_another_user_does_not_see_the_photo_in_their_list(as_bob, photo):
    assert as_bob.get("/api/v1/photos/").json()["results"] == []


@pytest.mark.parametrize(("method", "url", "expected"), EVERY_ENDPOINT)
def test_nobody_must_authenticate(anonymous, photo, method, url, expected):
    response = call(anonymous, method, url, photo)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"] == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
        "detail": None,
    }
    assert Photo.objects.count() == 1


def test_a_wrong_token_is_refused(anonymous, photo):
    anonymous.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = anonymous.get("/api/v1/photos/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_the_browser_session_works_too(alice, photo):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)

    assert client.get(f"/api/v1/photos/{photo.id}/").status_code == 200
    # A session is a browser's: changes need the CSRF token, as in the web app.
    response = client.delete(f"/api/v1/photos/{photo.id}/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "CSRF" in response.json()["error"]["message"]
