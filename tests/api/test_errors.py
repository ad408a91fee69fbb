"""Every error, whatever raised it, has the same JSON shape."""

import pytest

pytestmark = pytest.mark.django_db


def test_an_unknown_api_url_is_a_json_404(as_alice, anonymous):
    for client in (as_alice, anonymous):
        for method in ("get", "post", "delete"):
            response = getattr(client, method)("/api/v1/albums/")

            assert response.status_code == 404
            assert response.json() == {
                "error": {"code": "not_found", "message": "There is no API endpoint at this URL.", "detail": None}
            }


def test_a_malformed_id_is_a_json_404(as_alice):
    response = as_alice.get("/api/v1/photos/not-a-uuid/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_method_not_allowed_is_a_json_405(as_alice):
    response = as_alice.put("/api/v1/photos/")

    assert response.status_code == 405
    assert response.json() == {
        "error": {"code": "method_not_allowed", "message": 'Method "PUT" not allowed.', "detail": None}
    }


def test_malformed_json_is_a_json_400(anonymous):
    response = anonymous.generic("POST", "/api/v1/auth/token/", "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_bug_is_a_json_500_for_the_api_and_the_usual_page_elsewhere(as_alice, alice, client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("gallery.services.photos_of", broken)
    as_alice.raise_request_exception = False
    response = as_alice.get("/api/v1/photos/")

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "server_error", "detail": None,
                                         "message": "Something went wrong on our side; try again later."}}
    client.force_login(alice)
    client.raise_request_exception = False
    page = client.get("/")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")


def test_too_many_or_too_large_form_fields_are_a_json_413(as_alice, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    expected = {"error": {"code": "request_too_large", "detail": None,
                          "message": "The request has too many or too large form fields."}}

    for form in ({f"note{i}": "x" for i in range(10)}, {"note": "x" * 2000}):
        response = as_alice.post("/api/v1/photos/", form)  # multipart

        assert response.status_code == 413
        assert response.json() == expected


def test_an_answer_the_client_does_not_accept_is_a_json_406(as_alice):
    response = as_alice.get("/api/v1/photos/", HTTP_ACCEPT="text/html")

    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_acceptable"
