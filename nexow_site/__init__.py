"""The Nexow project package: settings, URLs, ASGI/WSGI, the Celery app and the `nexow` command."""

from .celery import app as celery_app

__all__ = ["celery_app"]
