"""Upload validation in gallery.services, and the upload page that reports on each file."""

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gallery import services
from gallery.models import Photo

from .helpers import image_bytes

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name, image_format, mode",
    [
        ("scan.jpg", "JPEG", "L"),
        ("scan.png", "PNG", "L"),
        ("scan.webp", "WEBP", "RGB"),
        ("scan.tif", "TIFF", "L"),
        ("scan.bmp", "BMP", "RGB"),
        ("scan.gif", "GIF", "P"),
        ("scan16.png", "PNG", "I;16"),
    ],
)
def test_it_keeps_the_original_exactly(alice, name, image_format, mode):
    data = image_bytes(image_format, size=(50, 30), mode=mode)

    photo = services.upload_photo(alice, SimpleUploadedFile(name, data))

    photo.refresh_from_db()
    with photo.original.open("rb") as stored:
        assert stored.read() == data
    assert photo.sha256 == hashlib.sha256(data).hexdigest()
    assert (photo.byte_size, photo.width, photo.height) == (len(data), 50, 30)
    assert photo.original_filename == name
    assert photo.format == image_format
    assert photo.owner == alice
    assert [job.state for job in photo.jobs.all()] == ["queued"]


@pytest.mark.parametrize("name, image_format, stored", [("x.html", "JPEG", ".jpg"), ("scan.jpg", "PNG", ".png"),
                                                        ("scan", "TIFF", ".tif")])
def test_it_names_the_stored_file_by_its_format_not_by_the_users_name(alice, name, image_format, stored):
    photo = services.upload_photo(alice, SimpleUploadedFile(name, image_bytes(image_format)))

    assert photo.original.name == f"originals/{photo.id}{stored}"
    assert photo.original_filename == name  # still what downloads are called


def test_it_takes_the_first_frame_of_an_animation(alice):
    frames = [Image.new("L", (40, 20), shade) for shade in (0, 128, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])

    photo = services.upload_photo(alice, SimpleUploadedFile("anim.gif", buffer.getvalue()))

    assert (photo.format, photo.width, photo.height) == ("GIF", 40, 20)


def test_it_records_the_size_as_displayed(alice):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated a quarter turn: shown 30 wide and 50 high
    data = image_bytes("JPEG", size=(50, 30), exif=exif.tobytes())

    photo = services.upload_photo(alice, SimpleUploadedFile("phone.jpg", data))

    assert (photo.width, photo.height) == (30, 50)


def refusal(owner, name, data):
    with pytest.raises(services.UploadRejected) as caught:
        services.upload_photo(owner, SimpleUploadedFile(name, data))
    assert not Photo.objects.exists()
    return caught.value


def test_it_refuses_what_is_not_an_image(alice, media):
    rejected = refusal(alice, "holiday.jpg", b"these bytes are no JPEG at all")

    assert rejected.code == "not_an_image"
    assert rejected.message == "holiday.jpg is not an image Pillow can read: cannot identify image file"
    assert not media.exists() or not any(media.rglob("*.*"))


def test_it_refuses_a_truncated_image(alice):
    data = image_bytes("PNG", size=(200, 200), mode="RGB")

    rejected = refusal(alice, "cut.png", data[: len(data) // 2])

    assert rejected.code == "not_an_image"
    assert rejected.message == "cut.png is not an image Pillow can read: it is damaged or cut short"


def test_it_refuses_an_empty_file(alice):
    rejected = refusal(alice, "nothing.png", b"")

    assert (rejected.code, rejected.message) == ("empty_file", "nothing.png is empty")


def test_it_refuses_a_file_over_the_size_limit(alice, settings):
    data = image_bytes("PNG", size=(64, 64), mode="RGB")
    settings.COLORIZER_MAX_UPLOAD_BYTES = len(data) - 1

    rejected = refusal(alice, "big.png", data)

    assert rejected.code == "too_large"
    assert rejected.message.startswith("big.png is 0.0 MB; the limit is")


def test_it_refuses_too_many_pixels(alice, settings):
    settings.COLORIZER_MAX_PIXELS = 2_000_000
    data = image_bytes("PNG", size=(2000, 1500))

    rejected = refusal(alice, "big.png", data)

    assert (rejected.code, rejected.message) == ("too_many_pixels", "big.png is 3.0 megapixels; the limit is 2")


def test_it_refuses_a_decompression_bomb_before_decoding_it(alice):
    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, "PNG")  # 144 megapixels in a few kilobytes

    rejected = refusal(alice, "bomb.png", buffer.getvalue())

    assert rejected.code == "too_many_pixels"
    assert rejected.message == "bomb.png is over 100 megapixels; the limit is 50"


def test_it_refuses_other_formats(alice):
    rejected = refusal(alice, "scan.ppm", image_bytes("PPM"))

    assert rejected.code == "unsupported_format"
    assert rejected.message == "scan.ppm is a PPM image; accepted formats are BMP, GIF, JPEG, PNG, TIFF, WebP"


def batch():
    return [
        SimpleUploadedFile("one.png", image_bytes("PNG")),
        SimpleUploadedFile("holiday.jpg", b"not a photo"),
        SimpleUploadedFile("two.jpg", image_bytes("JPEG")),
    ]


def test_the_upload_page_reports_on_each_file(client, alice):
    client.force_login(alice)

    response = client.post("/upload/", {"files": batch()}, headers={"Accept": "application/json"})

    results = response.json()["results"]
    assert [result["name"] for result in results] == ["one.png", "holiday.jpg", "two.jpg"]
    assert results[1] == {
        "name": "holiday.jpg",
        "code": "not_an_image",
        "message": "holiday.jpg is not an image Pillow can read: cannot identify image file",
    }
    stored = {str(photo.id): photo.original_filename for photo in Photo.objects.filter(owner=alice)}
    assert {results[0]["photo"]["id"]: "one.png", results[2]["photo"]["id"]: "two.jpg"} == stored
    assert results[0]["photo"]["state"] == "queued"


def test_the_upload_form_works_without_script(client, alice):
    client.force_login(alice)

    response = client.post("/upload/", {"files": batch()}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    texts = [str(message) for message in response.context["messages"]]
    assert texts == [
        "one.png uploaded; colorizing it now.",
        "holiday.jpg is not an image Pillow can read: cannot identify image file",
        "two.jpg uploaded; colorizing it now.",
    ]
    assert Photo.objects.filter(owner=alice).count() == 2


def test_the_upload_page_shows_the_limits(client, alice, settings):
    settings.COLORIZER_MAX_UPLOAD_BYTES = 10_000_000
    client.force_login(alice)

    page = client.get("/upload/").content.decode()

    assert "up to 10 MB and 50 megapixels each" in page
