"""The kill switch: a small, pure state machine that stops trading and is re-armed deliberately.

A switch is `armed` (trading allowed) or `tripped` (trading stopped, with the reason, the
time and who or what tripped it). Only a re-arm by a named actor with a stated reason lets
trading resume. There is one switch per deployment (tripped automatically by the rulebook on a
daily-loss or drawdown breach) and one organisation-wide emergency switch (tripped by a person);
`first_tripped` tells which of several switches stops an order. Who may perform which transition
is data (`TRANSITION_ROLES`), enforced by the platform's services; this module only enforces
the shape of the machine. Every transition is kept in `history` for the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ARMED = "armed"
TRIPPED = "tripped"
TRIP = "trip"
REARM = "rearm"

# (state, transition) -> next state. Anything else is refused: tripping a tripped switch
# would overwrite the first (the real) reason, and re-arming an armed one hides a mistake.
TRANSITIONS: Mapping[tuple[str, str], str] = {
    (ARMED, TRIP): TRIPPED,
    (TRIPPED, REARM): ARMED,
}

# Which organisation roles may perform each transition; "system" is the rulebook itself.
# Stopping is open to everyone who answers for trading; resuming is an administrator's call.
TRANSITION_ROLES: Mapping[str, frozenset[str]] = {
    TRIP: frozenset({"system", "owner", "admin", "trader", "compliance"}),
    REARM: frozenset({"owner", "admin"}),
}

SCOPES: tuple[str, ...] = ("organisation", "strategy", "deployment")


class KillSwitchError(ValueError):
    """A transition the machine does not allow, or one missing its actor or reason."""


def role_may(transition: str, role: str) -> bool:
    """Whether a member with `role` may perform `transition` (for the services to enforce)."""
    return role in TRANSITION_ROLES.get(transition, frozenset())


@dataclass(frozen=True, slots=True)
class KillSwitchEvent:
    transition: str
    actor: str
    reason: str
    at: int  # ns since the Unix epoch, UTC
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "transition": self.transition,
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at,
            "rule": self.rule,
        }


@dataclass(slots=True)
class KillSwitch:
    """One switch. Mutated only through `trip` and `rearm`, which append to `history`."""

    scope: str = "deployment"
    name: str = ""
    state: str = ARMED
    reason: str = ""
    rule: str = ""
    tripped_at: int | None = None
    tripped_by: str = ""
    history: list[KillSwitchEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise KillSwitchError(f"scope must be one of {', '.join(SCOPES)}, not {self.scope!r}")
        if self.state not in (ARMED, TRIPPED):
            raise KillSwitchError(f"state must be {ARMED!r} or {TRIPPED!r}, not {self.state!r}")

    @property
    def tripped(self) -> bool:
        return self.state == TRIPPED

    def can(self, transition: str) -> bool:
        return (self.state, transition) in TRANSITIONS

    def trip(self, *, reason: str, at: int, actor: str = "system", rule: str = "") -> None:
        """Stop trading. Refused if already tripped: the first reason is the one that matters."""
        self._move(TRIP, actor=actor, reason=reason, at=at, rule=rule)
        self.reason, self.rule, self.tripped_at, self.tripped_by = reason, rule, at, actor

    def rearm(self, *, actor: str, reason: str, at: int) -> None:
        """Allow trading again; needs the person responsible and why it is safe to resume."""
        self._move(REARM, actor=actor, reason=reason, at=at, rule="")
        self.reason, self.rule, self.tripped_at, self.tripped_by = "", "", None, ""

    def _move(self, transition: str, *, actor: str, reason: str, at: int, rule: str) -> None:
        if not actor or not actor.strip():
            raise KillSwitchError(f"{transition} needs an actor")
        if not reason or not reason.strip():
            raise KillSwitchError(f"{transition} needs a reason")
        target = TRANSITIONS.get((self.state, transition))
        if target is None:
            raise KillSwitchError(f"cannot {transition} a switch that is {self.state}")
        self.state = target
        self.history.append(KillSwitchEvent(transition, actor, reason, int(at), rule))

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "name": self.name,
            "state": self.state,
            "reason": self.reason,
            "rule": self.rule,
            "tripped_at": self.tripped_at,
            "tripped_by": self.tripped_by,
            "history": [e.to_dict() for e in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KillSwitch:
        return cls(
            scope=data.get("scope", "deployment"),
            name=data.get("name", ""),
            state=data.get("state", ARMED),
            reason=data.get("reason", ""),
            rule=data.get("rule", ""),
            tripped_at=data.get("tripped_at"),
            tripped_by=data.get("tripped_by", ""),
            history=[KillSwitchEvent(**e) for e in data.get("history", [])],
        )


def first_tripped(switches: Iterable[KillSwitch]) -> KillSwitch | None:
    """The first tripped switch in the order given (pass the organisation's switch first)."""
    for switch in switches:
        if switch.state == TRIPPED:
            return switch
    return None
