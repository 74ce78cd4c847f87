"""Browser assets that come from installed Python packages rather than from this repository.

The portal's charts use the plotly.js bundle shipped inside the ``plotly`` package
(``plotly/package_data/plotly.min.js``). `PackageAssetFinder` is a staticfiles finder that exposes
such files under ``vendor/`` — so ``{% static "vendor/plotly.min.js" %}`` works in development
(WhiteNoise serves through finders), ``collectstatic`` copies the file for production, and the
file itself is never copied into the source tree nor fetched from a CDN. htmx needs no entry
here: django-htmx ships it as app static (``{% htmx_script %}``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from django.contrib.staticfiles.finders import BaseFinder
from django.core.checks import Error
from django.core.files.storage import FileSystemStorage

PREFIX = "vendor"
# served name -> (package, path inside the package)
PACKAGE_ASSETS: dict[str, tuple[str, str]] = {
    "plotly.min.js": ("plotly", "package_data/plotly.min.js"),
}


def package_asset_path(name: str) -> Path | None:
    """Where the installed package keeps the asset ``name``; None when it is not installed."""
    package, inner = PACKAGE_ASSETS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / inner
    return path if path.is_file() else None


class _PrefixedStorage(FileSystemStorage):
    def __init__(self, location: Path) -> None:
        super().__init__(location=str(location))
        self.prefix = PREFIX  # read by collectstatic and WhiteNoise


class PackageAssetFinder(BaseFinder):
    """Finds ``vendor/<name>`` in the installed package that ships it."""

    def check(self, **kwargs: Any) -> list[Error]:
        return [Error(f"the {PACKAGE_ASSETS[name][0]} package does not ship {name}",
                      id="nexow.E010") for name in PACKAGE_ASSETS if package_asset_path(name) is None]

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        prefix, _, name = path.partition("/")
        found = package_asset_path(name) if prefix == PREFIX and name in PACKAGE_ASSETS else None
        if found is None:
            return [] if find_all or kwargs.get("all") else None  # type: ignore[return-value]
        return [str(found)] if find_all or kwargs.get("all") else str(found)

    def list(self, ignore_patterns: Any):
        for name in PACKAGE_ASSETS:
            path = package_asset_path(name)
            if path is not None:
                yield name, _PrefixedStorage(path.parent)
