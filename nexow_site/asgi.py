"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSocket connections are authenticated by session cookie or by an API key in the
``Authorization`` header (never in the URL), and their ``Origin`` must be an allowed host.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexow_site.settings")
# The web server pools its PostgreSQL connections (see the settings): under ASGI each request
# runs in a new thread, where a persistent connection would be opened for every request.
os.environ.setdefault("NEXOW_DB_POOL", "1")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from nexow_site.routing import websocket_urlpatterns  # noqa: E402
from nexow_site.ws_auth import WebSocketAuthMiddlewareStack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            WebSocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns()))
        ),
    }
)

if settings.EMBEDDED_WORKER and os.environ.get("NEXOW_SERVER") == "1":
    # Only the real server process consumes tasks; importing the module (tests, tools) does not.
    from nexow_site.celery import start_embedded_worker

    start_embedded_worker()
