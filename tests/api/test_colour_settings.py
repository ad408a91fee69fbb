"""Vividness and colour hints through the API: stored on the job, checked field by field, and the
eyedropper's palette."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gallery import services
from gallery.api import serializers
from gallery.api.exceptions import field_messages
from gallery.models import ColorizationJob
from web.helpers import image_bytes

pytestmark = pytest.mark.django_db

BLUE = "#3a5fcd"


def colorize(client, photo, body):
    return client.post(f"/api/v1/photos/{photo.id}/colorize/", body, format="json")


def test_settings_are_stored_on_a_new_job_and_shown_with_it(as_alice, photo):
    hints = [{"x": 80, "y": 10, "color": "#3A5FCD"}, {"x": 0, "y": 59, "color": "#ff0000"}]

    response = colorize(as_alice, photo, {"vividness": 1.3, "hints": hints})

    assert response.status_code == 202
    job = photo.jobs.get(state="queued")
    stored = [{"x": 80, "y": 10, "color": BLUE}, {"x": 0, "y": 59, "color": "#ff0000"}]  # colours in lower case
    assert (job.vividness, job.hints) == (1.3, stored)
    assert (response.json()["vividness"], response.json()["hints"]) == (1.3, stored)
    polled = as_alice.get(response["Location"]).json()
    assert (polled["vividness"], polled["hints"]) == (1.3, stored)
    assert as_alice.get(f"/api/v1/photos/{photo.id}/").json()["job"]["hints"] == stored


def test_no_body_is_the_models_own_colours(as_alice, photo):
    response = as_alice.post(f"/api/v1/photos/{photo.id}/colorize/")

    assert response.status_code == 202
    assert (response.json()["vividness"], response.json()["hints"]) == (1.0, [])


def test_the_worker_colorizes_with_the_settings(as_alice, photo):
    job = services.colorize_photo(photo, vividness=0.0, hints=[{"x": 5, "y": 5, "color": BLUE}])

    services.run_job(job.id)

    job.refresh_from_db()
    assert job.state == "succeeded"
    with job.result.open("rb") as f:
        rgb = np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB")).astype(int)
    assert np.abs(rgb - rgb[..., 1:2]).max() <= 1  # vividness 0: grey, whatever the hint says


# The photo is 90 x 60 px.
BAD_SETTINGS = [
    ({"hints": [{"x": 90, "y": 0, "color": BLUE}]}, {"hints": {"0": {"x": [
        "90 is outside the photo, which is 90 px wide (x from 0 to 89)."]}}},
     "hints[0].x: 90 is outside the photo, which is 90 px wide (x from 0 to 89)."),
    ({"hints": [{"x": 1, "y": 1, "color": BLUE}, {"x": 1, "y": 60, "color": BLUE}]}, {"hints": {"1": {"y": [
        "60 is outside the photo, which is 60 px high (y from 0 to 59)."]}}},
     "hints[1].y: 60 is outside the photo, which is 60 px high (y from 0 to 59)."),
    ({"hints": [{"x": -1, "y": 0, "color": BLUE}]}, {"hints": {"0": {"x": [
        "Ensure this value is greater than or equal to 0."]}}},
     "hints[0].x: Ensure this value is greater than or equal to 0."),
    ({"hints": [{"x": 1, "y": 1, "color": "blue"}]}, {"hints": {"0": {"color": ["Enter a colour as #rrggbb."]}}},
     "hints[0].color: Enter a colour as #rrggbb."),
    ({"hints": [{"x": 1, "y": 1, "color": "#12345"}]}, {"hints": {"0": {"color": ["Enter a colour as #rrggbb."]}}},
     "hints[0].color: Enter a colour as #rrggbb."),
    ({"hints": [{"x": 1, "y": 1}]}, {"hints": {"0": {"color": ["This field is required."]}}},
     "hints[0].color: This field is required."),
    ({"hints": [{"x": 1, "y": 1, "color": BLUE}] * 65}, {"hints": ["Ensure this field has no more than 64 elements."]},
     "hints: Ensure this field has no more than 64 elements."),
    ({"hints": BLUE}, {"hints": ['Expected a list of items but got type "str".']},
     'hints: Expected a list of items but got type "str".'),
    ({"vividness": 2.5}, {"vividness": ["Ensure this value is less than or equal to 2.0."]},
     "vividness: Ensure this value is less than or equal to 2.0."),
    ({"vividness": -0.5}, {"vividness": ["Ensure this value is greater than or equal to 0.0."]},
     "vividness: Ensure this value is greater than or equal to 0.0."),
    ({"vividness": "vivid"}, {"vividness": ["A valid number is required."]}, "vividness: A valid number is required."),
    # JSON numbers only, as the schema says: no numbers in strings, no booleans.
    ({"vividness": "1.3"}, {"vividness": ["A valid number is required."]}, "vividness: A valid number is required."),
    ({"vividness": False}, {"vividness": ["A valid number is required."]}, "vividness: A valid number is required."),
    ({"hints": [{"x": "1", "y": True, "color": BLUE}]},
     {"hints": {"0": {"x": ["A valid integer is required."], "y": ["A valid integer is required."]}}},
     "hints[0].x: A valid integer is required. hints[0].y: A valid integer is required."),
]


@pytest.mark.parametrize(("body", "detail", "message"), BAD_SETTINGS)
def test_bad_settings_are_refused_naming_the_field(as_alice, photo, body, detail, message):
    response = colorize(as_alice, photo, body)

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": message, "detail": detail}}
    assert [job.state for job in photo.jobs.all()] == ["succeeded"]  # no new job


def test_hints_count_pixels_of_the_upright_photo(as_alice, alice, colorizer):
    # Stored 90 x 60, turned a quarter by EXIF: 60 wide and 90 high as shown and as hints count.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = image_bytes("JPEG", size=(90, 60), mode="RGB", exif=exif)
    photo = services.upload_photo(alice, SimpleUploadedFile("turned.jpg", data))
    services.run_job(photo.jobs.get().id)
    assert (photo.width, photo.height) == (60, 90)

    assert colorize(as_alice, photo, {"hints": [{"x": 70, "y": 10, "color": BLUE}]}).status_code == 400
    response = colorize(as_alice, photo, {"hints": [{"x": 50, "y": 80, "color": BLUE}]})
    assert response.status_code == 202
    services.run_job(response.json()["id"])
    assert ColorizationJob.objects.get(id=response.json()["id"]).state == "succeeded"


def test_the_same_settings_twice_answer_the_same_job_other_settings_wait(as_alice, photo):
    body = {"vividness": 0.5, "hints": [{"x": 1, "y": 2, "color": BLUE}]}
    first = colorize(as_alice, photo, body)

    again = colorize(as_alice, photo, body)
    other = colorize(as_alice, photo, {"vividness": 0.6})

    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert other.json()["error"] == {
        "code": "busy",
        "message": "grandma.jpg is being colorized; wait for that to finish, then apply your settings.",
        "detail": None,
    }
    assert photo.jobs.count() == 2


def test_another_user_cannot_colorize_with_settings_nor_ask_the_palette(as_bob, photo):
    assert colorize(as_bob, photo, {"vividness": 1.5}).status_code == 404
    assert as_bob.get(f"/api/v1/photos/{photo.id}/palette/?x=1&y=1").status_code == 404
    assert photo.jobs.count() == 1


def test_the_palette_at_a_point(as_alice, photo):
    response = as_alice.get(f"/api/v1/photos/{photo.id}/palette/?x=89&y=59")

    assert response.status_code == 200
    body = response.json()
    assert (body["x"], body["y"]) == (89, 59)
    assert len(body["colors"]) == 6
    for proposal in body["colors"]:
        assert set(proposal) == {"color", "probability"}
        assert len(proposal["color"]) == 7 and int(proposal["color"][1:], 16) >= 0
        assert 0 <= proposal["probability"] <= 1


@pytest.mark.parametrize(("query", "message"), [
    ("x=90&y=0", "x: 90 is outside the photo, which is 90 px wide (x from 0 to 89)."),
    ("x=0&y=60", "y: 60 is outside the photo, which is 60 px high (y from 0 to 59)."),
    ("x=1", "y: This field is required."),
    ("x=left&y=1", "x: A valid integer is required."),
])
def test_the_palette_needs_a_point_inside_the_photo(as_alice, photo, query, message):
    response = as_alice.get(f"/api/v1/photos/{photo.id}/palette/?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["message"] == message


def test_no_palette_before_a_result_or_for_a_result_without_one(as_alice, alice, photo):
    waiting = services.upload_photo(alice, SimpleUploadedFile("scan.png", image_bytes("PNG")))
    response = as_alice.get(f"/api/v1/photos/{waiting.id}/palette/?x=1&y=1")
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_colorized"

    ColorizationJob.objects.filter(photo=photo).update(palette="")  # as results made before palettes
    response = as_alice.get(f"/api/v1/photos/{photo.id}/palette/?x=1&y=1")
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_palette"


def test_hints_for_a_model_without_the_hint_input_fail_the_job_saying_why(photo, settings, hintless_weights_file):
    settings.COLORIZER_WEIGHTS = str(hintless_weights_file)
    job = services.colorize_photo(photo, hints=[{"x": 1, "y": 1, "color": BLUE}])

    # CannotColorize: the task fails the job at once with its message (tasks.ColorizeTask), no retry.
    with pytest.raises(services.CannotColorize):
        services.run_job(job.id)

    job.refresh_from_db()
    assert job.error == "The colorizer in use cannot take colour hints; colorize this photo again without them."
    assert not job.result and not job.palette


def test_the_limits_match_the_engines():
    from mlcore.hints import MAX_HINTS
    from mlcore.inference import MAX_VIVIDNESS

    assert (serializers.MAX_HINTS, serializers.MAX_VIVIDNESS) == (MAX_HINTS, MAX_VIVIDNESS)


def test_error_messages_say_where_in_the_request():
    detail = {"hints": [{}, {"x": ["too far"], "non_field_errors": ["odd"]}], "vividness": ["not a number"]}
    assert list(field_messages(detail)) == ["hints[1].x: too far", "hints[1]: odd", "vividness: not a number"]
