"""Schemathesis hooks for tests/api/test_contract.py, loaded by its `st run` (SCHEMATHESIS_HOOKS).

Files in requests (`format: binary`, the uploads) are real small PNG and JPEG images, so that
schema-valid uploads reach the worker instead of all being refused as not images.
"""

import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image

MODES = {"PNG": ["L", "LA", "RGB", "RGBA", "P", "I;16"], "JPEG": ["L", "RGB", "CMYK"]}


@st.composite
def images(draw):
    """A small photo: a gradient in a drawn format, mode and size, with a bar of drawn grey across it."""
    image_format = draw(st.sampled_from(sorted(MODES)))
    mode = draw(st.sampled_from(MODES[image_format]))
    # From the smallest side an upload may have (COLORIZER_MIN_SIDE) up: anything smaller is a
    # refusal the schema documents, not a photo.
    size = (draw(st.integers(16, 64)), draw(st.integers(16, 64)))
    image = Image.linear_gradient("L").rotate(draw(st.sampled_from([0, 90, 180, 270]))).resize(size)
    image.paste(draw(st.integers(0, 255)), (0, size[1] // 3, size[0], size[1] // 3 + 2))
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, image_format)
    return buffer.getvalue()


schemathesis.openapi.format("binary", images())
