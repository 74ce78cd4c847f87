"""Authentication events → the audit log.

allauth and Django announce what happens to an account through signals (sign-in, sign-out,
password change, e-mail verification, two-factor changes); this module is the one place that turns
each of them into exactly one audit entry via `accounts.audit.audit_record`. These are
infrastructure notifications from the authentication library, not domain flow, which is why
receivers are acceptable here (the project otherwise calls the next step explicitly).

Where the entries go: an authentication event belongs to the person, not to any one of their
organisations, so every entry is written with ``organization=None`` — the platform audit chain —
with the user as actor. (Writing one copy per organisation would turn one event into N entries and
leak the existence of a user's other memberships into each tenant's log.) Operators read these in
the console; the IP address, user agent and request id come from the request.

`connect()` wires the receivers (idempotent, by ``dispatch_uid``); the accounts app calls it when
it is ready.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import user_logged_out
from django.http import HttpRequest

# Action names, one per event kind (the audit log filter lists them).
LOGIN = "auth.login"
LOGOUT = "auth.logout"
LOGIN_FAILED = "auth.login_failed"
SIGNED_UP = "auth.signed_up"
PASSWORD_CHANGED = "auth.password_changed"
PASSWORD_SET = "auth.password_set"
PASSWORD_RESET = "auth.password_reset"
EMAIL_CONFIRMED = "auth.email_confirmed"
MFA_ACTIVATED = "auth.mfa_activated"
MFA_DEACTIVATED = "auth.mfa_deactivated"
MFA_FAILED = "auth.mfa_failed"
RECOVERY_CODES_GENERATED = "auth.recovery_codes_generated"
REAUTHENTICATED = "auth.reauthenticated"

ACTIONS = (
    LOGIN, LOGOUT, LOGIN_FAILED, SIGNED_UP, PASSWORD_CHANGED, PASSWORD_SET, PASSWORD_RESET,
    EMAIL_CONFIRMED, MFA_ACTIVATED, MFA_DEACTIVATED, MFA_FAILED, RECOVERY_CODES_GENERATED,
    REAUTHENTICATED,
)


def _record(action: str, *, user, request: HttpRequest | None, metadata: dict | None = None,
            target=None) -> None:
    from accounts.audit import audit_record

    actor = user if user is not None and getattr(user, "pk", None) else None
    audit_record(organization=None, actor=actor, action=action, target=target, request=request,
                 metadata=metadata or {})


def record_login_failed(request: HttpRequest | None, *, email: str) -> None:
    """A rejected password. The attempted e-mail is kept: it is what an investigation searches."""
    _record(LOGIN_FAILED, user=None, request=request, metadata={"email": (email or "")[:254]})


# --- receivers ------------------------------------------------------------------------------

def _on_login(sender, request: HttpRequest, user, **kwargs: Any) -> None:
    # allauth's signal: sent once the whole login (password, e-mail verification, TOTP) is done.
    _record(LOGIN, user=user, request=request)


def _on_logout(sender, request: HttpRequest, user, **kwargs: Any) -> None:
    if user is not None:
        _record(LOGOUT, user=user, request=request)


def _on_signed_up(sender, request: HttpRequest, user, **kwargs: Any) -> None:
    _record(SIGNED_UP, user=user, request=request)


def _on_password_changed(sender, request: HttpRequest, user, **kwargs: Any) -> None:
    _record(PASSWORD_CHANGED, user=user, request=request)


def _on_password_set(sender, request: HttpRequest, user, **kwargs: Any) -> None:
    _record(PASSWORD_SET, user=user, request=request)


def _on_password_reset(sender, request: HttpRequest, user, **kwargs: Any) -> None:
    _record(PASSWORD_RESET, user=user, request=request)


def _on_email_confirmed(sender, request: HttpRequest, email_address, **kwargs: Any) -> None:
    _record(EMAIL_CONFIRMED, user=email_address.user, request=request,
            metadata={"email": email_address.email})


def _on_authenticator_added(sender, request: HttpRequest, user, authenticator, **kwargs: Any):
    from allauth.mfa.models import Authenticator

    # Activating TOTP also creates the first set of recovery codes; that is one change for the
    # person, recorded once, as the TOTP activation.
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        return
    _record(MFA_ACTIVATED, user=user, request=request, metadata={"type": authenticator.type})


def _on_authenticator_removed(sender, request: HttpRequest, user, authenticator, **kwargs: Any):
    from allauth.mfa.models import Authenticator

    # Deactivating the last authenticator also deletes the now useless recovery codes.
    if authenticator.type == Authenticator.Type.RECOVERY_CODES:
        return
    _record(MFA_DEACTIVATED, user=user, request=request, metadata={"type": authenticator.type})


def _on_authenticator_reset(sender, request: HttpRequest, user, authenticator, **kwargs: Any):
    _record(RECOVERY_CODES_GENERATED, user=user, request=request,
            metadata={"type": authenticator.type})


def _on_mfa_failed(sender, request: HttpRequest, user, authenticator, **kwargs: Any) -> None:
    _record(MFA_FAILED, user=user, request=request,
            metadata={"type": authenticator.type,
                      "reauthentication": bool(kwargs.get("reauthentication"))})


def _on_step_completed(sender, request: HttpRequest, user, method: str, **kwargs: Any) -> None:
    # Every step of every login passes here; only a re-authentication (password or TOTP typed
    # again before a sensitive action) is an event of its own.
    if kwargs.get("reauthenticated"):
        _record(REAUTHENTICATED, user=user, request=request, metadata={"method": method})


def connect() -> None:
    from allauth.account import signals as account_signals
    from allauth.mfa import signals as mfa_signals

    wiring = [
        (account_signals.user_logged_in, _on_login),
        (user_logged_out, _on_logout),
        (account_signals.user_signed_up, _on_signed_up),
        (account_signals.password_changed, _on_password_changed),
        (account_signals.password_set, _on_password_set),
        (account_signals.password_reset, _on_password_reset),
        (account_signals.email_confirmed, _on_email_confirmed),
        (account_signals.authentication_step_completed, _on_step_completed),
        (mfa_signals.authenticator_added, _on_authenticator_added),
        (mfa_signals.authenticator_removed, _on_authenticator_removed),
        (mfa_signals.authenticator_reset, _on_authenticator_reset),
        (mfa_signals.authentication_failed, _on_mfa_failed),
    ]
    for signal, receiver in wiring:
        signal.connect(receiver, dispatch_uid=f"nexow.auth_events.{receiver.__name__}")
