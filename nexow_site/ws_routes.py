"""The platform's own WebSocket routes."""

from django.urls import path

from nexow_site.consumers import OrganizationConsumer

websocket_urlpatterns = [
    path("ws/v1/orgs/<slug:org_slug>/", OrganizationConsumer.as_asgi(), name="ws-organization"),
]
