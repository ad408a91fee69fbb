"""Uploads are limited per user, per minute and per day, from settings."""

import pytest

from gallery.models import Photo

from .conftest import upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    def set_rates(per_minute, per_day):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"uploads_per_minute": per_minute, "uploads_per_day": per_day},
        }

    return set_rates


def upload(client):
    return client.post("/api/v1/photos/", {"image": upload_file()})


def test_uploads_over_the_minute_limit_get_429_and_retry_after(as_alice, as_bob, rates):
    rates("2/minute", "100/day")

    assert [upload(as_alice).status_code for _ in range(2)] == [202, 202]
    refused = upload(as_alice)

    assert refused.status_code == 429
    retry_after = int(refused["Retry-After"])
    assert 0 < retry_after <= 60
    assert refused.json()["error"] == {
        "code": "throttled",
        "message": f"Request was throttled. Expected available in {retry_after} seconds.",
        "detail": {"retry_after": retry_after},
    }
    assert Photo.objects.count() == 2
    # Per user: Bob may still upload, and reading is not limited.
    assert upload(as_bob).status_code == 202
    assert as_alice.get("/api/v1/photos/").status_code == 200


def test_uploads_over_the_day_limit_wait_for_the_day(as_alice, rates):
    rates("100/minute", "1/day")

    assert upload(as_alice).status_code == 202
    refused = upload(as_alice)

    assert refused.status_code == 429
    assert 60 < int(refused["Retry-After"]) <= 24 * 3600


def test_password_guesses_for_a_token_are_limited_per_address(anonymous, alice, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "token_attempts": "3/minute"},
    }
    guesses = [anonymous.post("/api/v1/auth/token/", {"username": "alice", "password": f"guess {i}"}) for i in range(3)]
    assert [r.status_code for r in guesses] == [400, 400, 400]

    # Even the right password waits now: a guesser can't tell a hit from the limit.
    refused = anonymous.post("/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "throttled"


def token_attempts(settings, rate):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "token_attempts": rate},
    }


def guess(client, forwarded_for, remote_addr="10.0.0.2"):
    return client.post("/api/v1/auth/token/", {"username": "alice", "password": "guess"},
                       HTTP_X_FORWARDED_FOR=forwarded_for, REMOTE_ADDR=remote_addr).status_code


def test_a_forged_forwarded_for_does_not_escape_the_limit_without_proxies(anonymous, alice, settings):
    token_attempts(settings, "3/minute")
    settings.TRUSTED_PROXIES = 0

    codes = [guess(anonymous, f"198.51.100.{i}") for i in range(4)]

    assert codes == [400, 400, 400, 429]


def test_behind_a_proxy_the_address_it_saw_is_counted_not_what_the_client_wrote(anonymous, alice, settings):
    token_attempts(settings, "3/minute")
    settings.TRUSTED_PROXIES = 1
    # The proxy appends the address it was connected from; the client wrote the rest.

    codes = [guess(anonymous, f"198.51.100.{i}, 203.0.113.7") for i in range(4)]

    assert codes == [400, 400, 400, 429]
    assert guess(anonymous, "198.51.100.1, 203.0.113.8") == 400  # another client behind the same proxy


def test_ipv6_clients_are_counted_by_their_network(anonymous, alice, settings):
    token_attempts(settings, "2/minute")

    codes = [guess(anonymous, "", remote_addr=f"2001:db8:1:2::{i:x}") for i in range(1, 4)]

    assert codes == [400, 400, 429]
    assert guess(anonymous, "", remote_addr="2001:db8:1:3::1") == 400
