"""WebSocket routes. Each app contributes its own list; this module only collects them."""

from __future__ import annotations

from importlib import import_module

# Apps that may define `websocket_urlpatterns` in their routing module.
_APPS = ("accounts", "trading", "risk", "reporting")


def websocket_urlpatterns() -> list:
    from nexow_site.ws_routes import websocket_urlpatterns as platform_routes

    patterns: list = list(platform_routes)
    for app in _APPS:
        try:
            module = import_module(f"{app}.routing")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app}.routing":
                raise
            continue
        patterns.extend(getattr(module, "websocket_urlpatterns", []))
    return patterns
