import pytest


@pytest.fixture(autouse=True)
def _own_media(media):
    """Every web test stores its files in a folder of its own (see `media`)."""
