"""Nexow's allauth account adapter: where allauth asks the project how to behave.

It keeps allauth's behaviour (e-mail login, mandatory verification, rate limits) and adds what the
platform needs around it: sign-up can be closed by the operator (``NEXOW_SIGNUP_OPEN``), e-mails
are signed as Nexow, and every failed password check is recorded in the audit log (see
`accounts.auth_events`).
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def format_email_subject(self, subject: str) -> str:
        # allauth would prefix the site's domain; people recognise the product name instead.
        return f"[Nexow] {subject}"

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return bool(getattr(settings, "NEXOW_SIGNUP_OPEN", True))

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        # Called by allauth once per rejected password (login and re-authentication alike), after
        # the rate limit was consumed; a throttled attempt never reaches the password check.
        from accounts import auth_events

        auth_events.record_login_failed(request, email=credentials.get("email", ""))
