"""ASGI entry point (`solaris.asgi:application`); the proxy's streaming path needs it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solaris.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (settings are ready only after the line above)

if settings.SOLARIS_SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(django_application)
else:
    application = django_application
