"""Top-level URLs. Each app mounts its own API under /api/v1/ and its pages at the root."""

from importlib import import_module

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from nexow_site import api, health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", api.api_root, name="api-root"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("console/", admin.site.urls),
]


def _optional(module: str):
    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        if not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        return None


# Apps contribute `api_urlpatterns` (mounted under /api/v1/) and `urlpatterns` (portal pages).
for _app in ("accounts", "trading", "risk", "reporting"):
    _api = _optional(f"{_app}.api.urls")
    if _api is not None:
        urlpatterns.append(path("api/v1/", include((_api.urlpatterns, _app), namespace=f"{_app}-api")))
    _pages = _optional(f"{_app}.urls")
    if _pages is not None:
        urlpatterns.append(path("", include(_pages)))

handler404 = "nexow_site.errors.handler404"
handler500 = "nexow_site.errors.handler500"
