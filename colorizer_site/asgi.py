import os

from django.core.asgi import get_asgi_application

# A server is a deployment unless told otherwise: production settings refuse to start without
# a secret key of its own (`make run` uses runserver with the development settings).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "colorizer_site.settings.production")

application = get_asgi_application()
