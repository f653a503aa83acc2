"""ASGI entry point (`solaris.asgi:application`); the proxy's streaming path needs it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solaris.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (settings are ready only after the line above)
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

application = (
    ASGIStaticFilesHandler(django_application)
    if settings.SOLARIS_SERVE_STATIC
    else django_application
)
