"""What the gallery does when django.contrib.auth reports on accounts (connected in GalleryConfig.ready)."""

from . import ratelimits, services


def note_failed_login(sender, credentials, request=None, **kwargs):
    # Sent by authenticate() for the site's, the admin's and the token endpoint's log-ins alike.
    ratelimits.note_failed_login(request, credentials.get("username", ""))


def forget_failed_logins(sender, request, user, **kwargs):
    ratelimits.forget_failed_logins(user.get_username())


def retire_token_on_password_change(sender, instance, created, **kwargs):
    # set_password() keeps the new password in _password until the user is saved (Django tells
    # its password validators then); the hash upgrade at log-in clears it first: not a change.
    if not created and getattr(instance, "_password", None) is not None:
        services.password_changed(instance)
