"""ASGI entry point (`solaris.asgi:application`); the proxy's streaming path needs it.

The proxy's two endpoints take their own lane (proxy.edge), past Django's middleware and signals;
every other path is Django's.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "solaris.settings")
django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (settings are ready only after the line above)
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from proxy.edge import lane  # noqa: E402

application = lane(
    ASGIStaticFilesHandler(django_application)
    if settings.SOLARIS_SERVE_STATIC
    else django_application
)
