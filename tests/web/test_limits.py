"""Limits on password guessing, sign-ups and uploads through the site (the API's: tests/api/test_throttling.py)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from gallery.models import Photo

from .helpers import image_bytes

pytestmark = pytest.mark.django_db


def log_in(client, username, password, address="192.0.2.10", url="/accounts/login/"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_wrong_passwords_for_one_account_lock_it_then_even_the_right_one_waits(client, alice):
    tries = [log_in(client, "alice", f"guess {i}", address=f"192.0.2.{i}") for i in range(10)]
    assert {response.status_code for response in tries} == {200}
    assert "Please enter a correct username and password" in tries[-1].text

    refused = log_in(client, "alice", "correct horse battery", address="198.51.100.1")

    assert refused.status_code == 429
    assert ("Too many failed log-ins for this account or from your network. "
            "Please try again in 15 minutes.") in refused.text
    assert 0 < int(refused["Retry-After"]) <= 15 * 60
    assert "_auth_user_id" not in client.session
    # The API's token endpoint counts the same failures.
    token = client.post("/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"})
    assert token.status_code == 429 and token.json()["error"]["code"] == "throttled"


def test_twenty_wrong_log_ins_from_one_address_lock_it_out(client, alice):
    codes = [log_in(client, f"someone-{i}", "guess").status_code for i in range(20)]

    assert codes == [200] * 20
    assert log_in(client, "alice", "correct horse battery").status_code == 429
    # Elsewhere, Alice logs in.
    assert log_in(client, "alice", "correct horse battery", address="192.0.2.99").status_code == 302


def test_a_successful_log_in_clears_the_accounts_failures(client, alice):
    for i in range(9):
        log_in(client, "alice", "typo", address=f"192.0.2.{i}")
    assert log_in(client, "alice", "correct horse battery").status_code == 302
    client.post("/accounts/logout/")

    assert log_in(client, "alice", "typo again").status_code == 200  # not locked: counting anew


def test_the_admin_log_in_is_limited_too(client, admin_user):
    for i in range(10):
        assert log_in(client, "admin", f"guess {i}", url="/admin/login/").status_code == 200

    refused = log_in(client, "admin", "password", url="/admin/login/")

    assert refused.status_code == 429
    assert "Too many failed log-ins" in refused.text


def test_sign_ups_are_limited_per_address(client, settings, django_user_model):
    settings.COLORIZER_SIGNUPS_PER_HOUR = 2
    for name in ("carol", "dave"):
        form = {"username": name, "password1": "a fine long passphrase", "password2": "a fine long passphrase"}
        assert client.post("/accounts/signup/", form).status_code == 302
        client.post("/accounts/logout/")

    form = {"username": "eve", "password1": "a fine long passphrase", "password2": "a fine long passphrase"}
    refused = client.post("/accounts/signup/", form)

    assert refused.status_code == 429
    assert "Too many sign-ups from your network. Please try again in" in refused.text
    assert not django_user_model.objects.filter(username="eve").exists()
    assert client.post("/accounts/signup/", form, REMOTE_ADDR="192.0.2.50").status_code == 302


def test_the_upload_page_counts_against_the_apis_upload_quota(client, alice, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "uploads_per_minute": "3/minute"
        },
    }
    client.force_login(alice)
    api = client.post("/api/v1/photos/", {"image": SimpleUploadedFile("api.png", image_bytes("PNG"))})
    assert api.status_code == 202
    files = [SimpleUploadedFile(f"page-{i}.png", image_bytes("PNG")) for i in range(3)]

    results = client.post("/upload/", {"files": files}, headers={"Accept": "application/json"}).json()["results"]

    assert ["photo" in result for result in results] == [True, True, False]
    assert results[2]["code"] == "throttled"
    assert results[2]["message"].startswith(
        "page-2.png was not uploaded: you have reached your upload limit; try again in ")
    assert Photo.objects.count() == 3
    again = client.post("/api/v1/photos/", {"image": SimpleUploadedFile("api.png", image_bytes("PNG"))})
    assert again.status_code == 429


class Unreadable:
    """A request body that fails the test when anything reads it."""

    def read(self, *args):
        raise AssertionError("the request body was read")

    readline = read


def declared(client, url, length, **headers):
    """A POST whose Content-Length says `length` bytes, none of which may be read."""
    return client.generic("POST", url, b"", content_type="multipart/form-data; boundary=x",
                          CONTENT_LENGTH=str(length), **{"wsgi.input": Unreadable()}, **headers)


@pytest.fixture
def csrf_client(alice):
    # CsrfViewMiddleware then reads the form before the view does: the refusal must come first.
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def test_a_gigabyte_upload_is_refused_from_its_content_length_alone(csrf_client, media, settings):
    settings.COLORIZER_MAX_UPLOAD_FILES = 10

    page = declared(csrf_client, "/upload/", 10**9)
    script = declared(csrf_client, "/upload/", 10**9, HTTP_ACCEPT="application/json")
    api = declared(csrf_client, "/api/v1/photos/", 10**9)

    assert page.status_code == 413
    assert "This request is 1000.0 MB; at most 252.8 MB is accepted here: up to 10 files at a time" in page.text
    assert script.status_code == 413 and script.json()["error"]["code"] == "too_large"
    assert api.status_code == 413
    assert api.json()["error"]["message"] == ("This request is 1000.0 MB; at most 27.6 MB is accepted here: "
                                              "a file of up to 25 MB.")
    assert not Photo.objects.exists() and not media.exists()


def test_pages_without_uploads_take_small_bodies_only(client):
    assert declared(client, "/accounts/login/", 3_000_000).status_code == 413


def test_a_batch_over_the_file_limit_is_refused(client, alice, settings):
    settings.COLORIZER_MAX_UPLOAD_FILES = 2
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    client.force_login(alice)
    files = [SimpleUploadedFile(f"{i}.png", image_bytes("PNG")) for i in range(3)]

    assert client.post("/upload/", {"files": files}).status_code == 400
    assert not Photo.objects.exists()
