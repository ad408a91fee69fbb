"""Limits on password guessing, sign-ups and uploads through the site (the API's: tests/api/test_throttling.py)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

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
    assert "Too many failed log-ins for this account or from your network. Please try again in 15 minutes." in refused.text
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
    assert "Too many accounts were created from your network. Please try again in" in refused.text
    assert not django_user_model.objects.filter(username="eve").exists()
    assert client.post("/accounts/signup/", form, REMOTE_ADDR="192.0.2.50").status_code == 302


def test_the_upload_page_counts_against_the_apis_upload_quota(client, alice, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "uploads_per_minute": "3/minute"},
    }
    client.force_login(alice)
    api = client.post("/api/v1/photos/", {"image": SimpleUploadedFile("api.png", image_bytes("PNG"))})
    assert api.status_code == 202
    files = [SimpleUploadedFile(f"page-{i}.png", image_bytes("PNG")) for i in range(3)]

    results = client.post("/upload/", {"files": files}, headers={"Accept": "application/json"}).json()["results"]

    assert ["photo" in result for result in results] == [True, True, False]
    assert results[2]["code"] == "throttled"
    assert results[2]["message"].startswith("page-2.png was not uploaded: you have reached your upload limit; try again in ")
    assert Photo.objects.count() == 3
    again = client.post("/api/v1/photos/", {"image": SimpleUploadedFile("api.png", image_bytes("PNG"))})
    assert again.status_code == 429
