from django.apps import AppConfig
from django.conf import settings


class GalleryConfig(AppConfig):
    name = "gallery"

    def ready(self):
        from PIL import Image

        # Pillow warns above this many pixels and refuses twice as many: that stops a
        # decompression bomb before it is decoded, in the web process and the worker alike.
        Image.MAX_IMAGE_PIXELS = settings.COLORIZER_MAX_PIXELS
