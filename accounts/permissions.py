"""The permission matrix: roles as ordered sets of ``resource:level`` scopes, defined once.

A level implies the levels below it (``admin`` ⊃ ``write`` ⊃ ``read``). Every API view declares
the scope it needs per method; a role, or an API key narrowed from its creator's role, either holds
that scope or gets a 403. "Above" between roles is set inclusion of their scopes: a member may
grant a role only when every scope of that role is also theirs.

`render_matrix_markdown()` renders the table published in docs/accounts.md; a test keeps the two
in step.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models

RESOURCES: tuple[str, ...] = (
    "org", "members", "keys", "audit", "market_data", "strategies", "simulations",
    "deployments", "orders", "risk", "reports",
)
LEVELS: tuple[str, ...] = ("read", "write", "admin")


class Role(models.TextChoices):
    # Declaration order is the display order, most powerful first.
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    TRADER = "trader", "Trader"
    ANALYST = "analyst", "Analyst"
    COMPLIANCE = "compliance", "Compliance"
    VIEWER = "viewer", "Viewer"


# The highest level each role holds per resource; a missing resource means no access.
_R, _W, _A = "read", "write", "admin"
ROLE_LEVELS: dict[str, dict[str, str]] = {
    Role.OWNER: {res: _A for res in RESOURCES},
    Role.ADMIN: {
        # Only owners delete the organisation (org:admin).
        "org": _W, "members": _A, "keys": _A, "audit": _R, "market_data": _A, "strategies": _A,
        "simulations": _A, "deployments": _A, "orders": _A, "risk": _A, "reports": _A,
    },
    Role.TRADER: {
        # risk:write lets a trader pull the organisation's kill switch in an emergency;
        # changing limits and re-arming need risk:admin.
        "org": _R, "members": _R, "keys": _W, "market_data": _R, "strategies": _W,
        "simulations": _W, "deployments": _W, "orders": _W, "risk": _W, "reports": _R,
    },
    Role.ANALYST: {
        "org": _R, "members": _R, "keys": _W, "market_data": _R, "strategies": _W,
        "simulations": _W, "deployments": _R, "orders": _R, "risk": _R, "reports": _R,
    },
    Role.COMPLIANCE: {
        "org": _R, "members": _R, "keys": _W, "audit": _R, "market_data": _R, "strategies": _R,
        "simulations": _R, "deployments": _R, "orders": _R, "risk": _W, "reports": _W,
    },
    Role.VIEWER: {
        # keys:write lets a viewer make read-only keys for dashboards; a key never exceeds its
        # creator's role, so this grants nothing new.
        "org": _R, "members": _R, "keys": _W, "market_data": _R, "strategies": _R,
        "simulations": _R, "deployments": _R, "orders": _R, "risk": _R, "reports": _R,
    },
}

ALL_SCOPES: tuple[str, ...] = tuple(f"{res}:{lvl}" for res in RESOURCES for lvl in LEVELS)


def _expand(levels: dict[str, str]) -> frozenset[str]:
    scopes = set()
    for res, top in levels.items():
        for lvl in LEVELS[: LEVELS.index(top) + 1]:
            scopes.add(f"{res}:{lvl}")
    return frozenset(scopes)


ROLE_SCOPES: dict[str, frozenset[str]] = {role: _expand(lv) for role, lv in ROLE_LEVELS.items()}


def is_valid_scope(scope: str) -> bool:
    return scope in ALL_SCOPES


def scopes_for_role(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


def expand_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """``orders:write`` also grants ``orders:read``; unknown scopes raise ValueError."""
    levels: dict[str, str] = {}
    for scope in scopes:
        if not is_valid_scope(scope):
            raise ValueError(f"Unknown scope {scope!r}.")
        res, lvl = scope.split(":")
        if res not in levels or LEVELS.index(lvl) > LEVELS.index(levels[res]):
            levels[res] = lvl
    return _expand(levels)


def normalize_scopes(scopes: Iterable[str]) -> list[str]:
    """The smallest list naming the same grant (highest level per resource), in matrix order."""
    expanded = expand_scopes(scopes)
    out = []
    for res in RESOURCES:
        for lvl in reversed(LEVELS):
            if f"{res}:{lvl}" in expanded:
                out.append(f"{res}:{lvl}")
                break
    return out


def role_can_grant(granter_role: str, role: str) -> bool:
    """A role is grantable when it is not above the granter's: all its scopes are the granter's."""
    return scopes_for_role(role) <= scopes_for_role(granter_role)


def render_matrix_markdown() -> str:
    """The role × resource table for the documentation, generated from ``ROLE_LEVELS``."""
    header = "| resource | " + " | ".join(r.value for r in Role) + " |"
    rule = "|---|" + "---|" * len(Role)
    rows = [header, rule]
    for res in RESOURCES:
        cells = [ROLE_LEVELS[role].get(res, "—") for role in Role]
        rows.append(f"| `{res}` | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
