"""Every image mode the upload accepts previews and downloads: the original as PNG, the result as
JPEG, the thumbnail (TIFFs in particular hold modes that PNG and JPEG cannot)."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gallery import services

pytestmark = pytest.mark.django_db

GREY = Image.radial_gradient("L").resize((48, 32))


def in_mode(mode):
    """(image, format) of the grey photo in `mode`; 32-bit and float greys hold 8-bit values."""
    rgb = GREY.convert("RGB")
    images = {
        "CMYK": rgb.convert("CMYK"),
        "LAB": rgb.convert("LAB"),
        "I": GREY.convert("I"),
        "I;16": Image.fromarray(np.asarray(GREY).astype(np.uint16) * 257),
        "F": GREY.convert("F"),
        "P": GREY.convert("P"),
        "LA": GREY.convert("LA"),
        "RGBA": rgb.convert("RGBA"),
    }
    image = images[mode]
    assert image.mode == mode
    if mode in ("P", "LA", "RGBA"):
        return image, "PNG"
    return image, "TIFF"


def encoded(image, image_format):
    buffer = io.BytesIO()
    # The palette's first entry (black) transparent: P with transparency.
    image.save(buffer, image_format, **({"transparency": 0} if image.mode == "P" else {}))
    return buffer.getvalue()


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("mode", ["CMYK", "LAB", "I", "I;16", "F", "P", "LA", "RGBA"])
def test_every_accepted_mode_previews_and_downloads(client, alice, colorizer, mode):
    image, image_format = in_mode(mode)
    upload = SimpleUploadedFile(f"scan.{image_format.lower()}", encoded(image, image_format))
    photo = services.upload_photo(alice, upload)
    assert Image.open(photo.original).mode == mode  # stored as uploaded
    services.run_job(photo.jobs.get().id)
    client.force_login(alice)

    assert client.get(f"/photos/{photo.id}/").status_code == 200
    responses = {name: client.get(f"/photos/{photo.id}/{name}") for name in
                 ("original", "original.png", "result.png", "result.jpg", "thumbnail")}

    assert {name: response.status_code for name, response in responses.items()} == dict.fromkeys(responses, 200)
    contents = {name: body(response) for name, response in responses.items()}
    formats = {name: Image.open(io.BytesIO(content)).format for name, content in contents.items()}
    assert formats == {"original": image_format, "original.png": "PNG", "result.png": "PNG", "result.jpg": "JPEG",
                       "thumbnail": "JPEG"}
    # As bright as the photo is: a 32-bit or float image of 8-bit values is not read as near black.
    preview = Image.open(io.BytesIO(contents["original.png"])).convert("L")
    assert abs(np.asarray(preview, float).mean() - np.asarray(GREY, float).mean()) < 3
    result = Image.open(io.BytesIO(contents["result.png"])).convert("L")
    assert abs(np.asarray(result, float).mean() - np.asarray(GREY, float).mean()) < 8
