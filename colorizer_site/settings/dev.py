"""Development: base.py with debugging on and a public secret key (`make run`, manage.py).

Both can be changed from the environment, but a process that does not debug refuses to run with
the public key: sessions and password-reset links signed with it could be forged by anyone.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEVELOPMENT_SECRET_KEY, KNOWN_SECRET_KEYS, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
if not DEBUG and SECRET_KEY in KNOWN_SECRET_KEYS:
    raise ImproperlyConfigured(
        "DJANGO_DEBUG is false and DJANGO_SECRET_KEY is the public development key: set it to a secret of your own"
    )
