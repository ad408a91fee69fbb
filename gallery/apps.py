from django.apps import AppConfig
from django.conf import settings


class GalleryConfig(AppConfig):
    name = "gallery"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django.db.models.signals import post_save
        from PIL import Image

        from . import signals

        # Pillow warns above this many pixels and refuses twice as many: that stops a
        # decompression bomb before it is decoded, in the web process and the worker alike.
        Image.MAX_IMAGE_PIXELS = settings.COLORIZER_MAX_PIXELS

        user_login_failed.connect(signals.note_failed_login, dispatch_uid="gallery.note_failed_login")
        user_logged_in.connect(signals.forget_failed_logins, dispatch_uid="gallery.forget_failed_logins")
        post_save.connect(signals.retire_token_on_password_change, sender=get_user_model(),
                          dispatch_uid="gallery.retire_token_on_password_change")
