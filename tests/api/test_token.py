"""Getting an API token: from the API with a username and password, or on the profile page."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_a_username_and_password_give_the_token(anonymous, alice):
    response = anonymous.post("/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"})

    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=alice).key
    # The same token each time, until it is reset.
    again = anonymous.post("/api/v1/auth/token/", {"username": "alice", "password": "correct horse battery"})
    assert again.json()["token"] == token
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anonymous.get("/api/v1/photos/").status_code == 200


def test_a_wrong_password_gives_no_token(anonymous, alice):
    response = anonymous.post("/api/v1/auth/token/", {"username": "alice", "password": "wrong"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "Unable to log in with provided credentials.",
        "detail": {"non_field_errors": ["Unable to log in with provided credentials."]},
    }
    assert not Token.objects.exists()


def test_the_profile_page_shows_the_token(client, alice):
    client.force_login(alice)
    assert "You have no token yet" in client.get("/profile/").text

    client.post("/profile/token")

    token = Token.objects.get(user=alice)
    page = client.get("/profile/").text
    assert f'<code class="token" data-role="token">{token.key}</code>' in page
    assert "/api/docs/" in page


def test_resetting_the_token_on_the_profile_page_retires_the_old_one(client, alice, as_alice):
    old = Token.objects.get(user=alice).key
    client.force_login(alice)

    response = client.post("/profile/token", follow=True)

    new = Token.objects.get(user=alice).key
    assert new != old
    assert new in response.text
    assert "You have a new API token" in response.text
    assert as_alice.get("/api/v1/photos/").status_code == 401  # still sends the old one
    as_alice.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert as_alice.get("/api/v1/photos/").status_code == 200


def test_the_profile_page_needs_a_session(client):
    assert client.get("/profile/").url.startswith("/accounts/login/")
    assert client.post("/profile/token").url.startswith("/accounts/login/")
    assert not Token.objects.exists()


def test_a_password_change_retires_the_token(as_alice, alice):
    old = Token.objects.get(user=alice).key

    alice.set_password("a brand new passphrase")
    alice.save()

    assert as_alice.get("/api/v1/photos/").status_code == 401
    new = Token.objects.get(user=alice).key  # a new one, on the profile page
    assert new != old
    as_alice.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert as_alice.get("/api/v1/photos/").status_code == 200


def test_a_stronger_hash_at_log_in_is_no_password_change(client, alice, as_alice, settings):
    # Django rehashes a password with the first hasher when someone logs in with it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]

    logged_in = client.post("/accounts/login/", {"username": "alice", "password": "correct horse battery"})

    assert logged_in.status_code == 302

    alice.refresh_from_db()
    assert alice.password.startswith("pbkdf2_sha256$")
    assert as_alice.get("/api/v1/photos/").status_code == 200


def test_tokens_expire_after_the_configured_days_and_the_endpoint_gives_a_new_one(client, anonymous, alice, settings):
    settings.COLORIZER_API_TOKEN_DAYS = 30
    old = Token.objects.create(user=alice)
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=31))
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {old.key}")
    client.force_login(alice)
    assert "; expired " in client.get("/profile/").text

    expired = anonymous.get("/api/v1/photos/")

    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == (
        "This token has expired. Get a new one from /api/v1/auth/token/ or your profile page.")
    credentials = {"username": "alice", "password": "correct horse battery"}
    new = anonymous.post("/api/v1/auth/token/", credentials).json()["token"]
    assert new != old.key
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {new}")
    assert anonymous.get("/api/v1/photos/").status_code == 200


def test_the_admin_shows_tokens_by_a_prefix_and_can_revoke_them(client, admin_user, alice):
    token = Token.objects.create(user=alice)
    client.force_login(admin_user)

    listing = client.get("/admin/gallery/apitoken/")
    detail = client.get(f"/admin/gallery/apitoken/{alice.pk}/change/")
    confirm = client.get(f"/admin/gallery/apitoken/{alice.pk}/delete/")
    client.post(f"/admin/gallery/apitoken/{alice.pk}/delete/", {"post": "yes"})

    for page in (listing, detail, confirm):
        assert page.status_code == 200
        assert token.key[:6] in page.text and token.key not in page.text
    assert not Token.objects.exists()
    assert token.key not in LogEntry.objects.get().object_repr
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404  # DRF's own, listing whole keys
