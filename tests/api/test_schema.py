"""The OpenAPI schema is valid, covers every endpoint with its errors, and its docs work offline."""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.urls import URLPattern
from openapi_spec_validator import validate
from playwright.sync_api import expect, sync_playwright

from gallery.api.urls import urlpatterns

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(anonymous):
    response = anonymous.get("/api/schema/?format=json")  # public, like any API's reference
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_valid_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    validate(schema)


def test_the_schema_generates_without_warnings(tmp_path):
    # drf-spectacular's own check: warnings mean guessed or missing documentation.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


def api_v1_paths():
    """The endpoints as the URL configuration has them, in OpenAPI's notation."""
    routes = [p.pattern._route for p in urlpatterns if isinstance(p, URLPattern) and str(p.pattern).startswith("v1/")]
    return {"/api/" + re.sub(r"<uuid:(\w+)>", lambda m: "{id}", route) for route in routes}


def test_every_endpoint_is_documented(schema):
    assert set(schema["paths"]) == api_v1_paths()
    assert "/api/v1/photos/{id}/result" in schema["paths"]  # the lookup above found them


def test_every_operation_documents_its_errors(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"400", "406", "413", "415", "429"} if path == "/api/v1/auth/token/" else {"401"}
            if "{id}" in path:
                expected.add("404")
            if method in ("post", "delete") and path != "/api/v1/auth/token/":
                expected.add("403")  # CSRF, for the browser session
            if not path.endswith(("/original", "/result")):  # those answer whatever Accept asks for
                expected.add("406")
            assert expected <= set(responses), (method, path)
            for status, response in responses.items():
                if status.startswith("4"):
                    content = response["content"]["application/json"]["schema"]
                    assert content == {"$ref": "#/components/schemas/Error"}, (method, path, status)
            if "401" in responses:
                assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
            if "429" in responses:
                assert responses["429"]["headers"]["Retry-After"]["required"] is True


def test_the_error_statuses_follow_from_each_view(schema):
    paths = schema["paths"]
    assert set(paths["/api/v1/photos/"]["get"]["responses"]) == {"200", "400", "401", "404", "406"}
    assert set(paths["/api/v1/photos/{id}/"]["get"]["responses"]) == {"200", "401", "404", "406"}
    assert set(paths["/api/v1/photos/{id}/result"]["get"]["responses"]) == {"200", "401", "404", "409"}
    assert set(paths["/api/v1/photos/{id}/"]["delete"]["responses"]) == {"204", "401", "403", "404", "406"}


def test_answers_declare_every_field_they_send_and_which_may_be_null(schema):
    schemas = schema["components"]["schemas"]
    for name in ("Job", "Photo"):
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name
    nullable = {
        name: {field for field, spec in schemas[name]["properties"].items() if spec.get("nullable")}
        for name in ("Job", "Photo")
    }
    assert nullable == {"Job": {"error", "result_url", "started_at", "finished_at"}, "Photo": {"result_url"}}


def test_the_state_filter_and_pages_are_validated_as_documented(schema):
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/photos/"]["get"]["parameters"]}
    assert parameters["state"]["enum"] == ["queued", "running", "succeeded", "failed"]
    assert parameters["page"]["minimum"] == parameters["page_size"]["minimum"] == 1


def test_uploads_are_documented_as_multipart_files_with_their_limits(schema):
    upload = schema["paths"]["/api/v1/photos/"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form == {"$ref": "#/components/schemas/UploadRequest"}
    assert schema["components"]["schemas"]["UploadRequest"]["properties"]["image"]["format"] == "binary"
    assert {"202", "400", "413", "415", "429"} <= set(upload["responses"])
    assert "Retry-After" in upload["responses"]["429"]["headers"]
    assert "Location" in upload["responses"]["202"]["headers"]


def test_the_docs_page_needs_nothing_from_the_internet(anonymous):
    response = anonymous.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/schema/" in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and not [url for url in assets if "//" in url]
    for url in assets:
        assert url.startswith("/static/drf_spectacular_sidecar/")
        assert finders.find(url.removeprefix("/static/")), url


def test_swagger_ui_renders_the_api_with_no_network(live_server):
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{chromium} is missing (make test installs it)")
        pytest.skip(f"{chromium} is missing: `make test` installs Debian's chromium")
    outside = []

    def only_the_live_server(route):
        if urlsplit(route.request.url).netloc == urlsplit(live_server.url).netloc:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.route("**/*", only_the_live_server)
        page.goto(live_server.url + "/api/docs/")
        expect(page.get_by_role("heading", name="Colorizer API")).to_be_visible(timeout=30_000)
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/photos/{id}/result")).to_be_visible()
        browser.close()
    assert outside == []
