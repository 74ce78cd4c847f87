"""WSGI entry point (the ASGI one in asgi.py is what `nexow start` serves)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexow_site.settings")
application = get_wsgi_application()
