"""Getting an API token: from the API with a username and password, or on the profile page."""

import pytest
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
