"""The operator's admin console at /console/: staff only, and only with two-factor authentication.

`NexowAdminSite` replaces Django's default admin site (through `NexowAdminConfig.default_site`), so
every `admin.site.register(...)` in the apps lands here. It hardens the stock site in three ways:

* there is no separate admin password form: signing in goes through the portal's allauth login,
  which enforces the TOTP step for users who have it and shares the login rate limits (failed
  attempts are throttled per address and per e-mail on the shared cache);
* a signed-in user must be active staff **and** have an activated TOTP authenticator; staff
  without one are refused with a page telling them to enable two-factor authentication;
* the session itself must have passed a second factor (a TOTP or recovery code at sign-in or a
  re-authentication with one), so a session opened before the authenticator existed, or
  without its step, does not reach the console;
* the console sends no-store cache headers (inherited from `admin_view`) and its logout is POST.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def staff_has_mfa(user) -> bool:
    """True when `user` has an activated TOTP authenticator (recovery codes alone do not count)."""
    # Imported here: this module is loaded while the app registry is still being populated.
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists()


def session_passed_mfa(request: HttpRequest) -> bool:
    """True when this session was verified with a second factor (allauth's session records)."""
    from allauth.account.authentication import get_authentication_records

    return any(record.get("method") == "mfa"
               for record in get_authentication_records(request, request.user))


def console_refusal(request: HttpRequest) -> str | None:
    """Why ``request``'s user may not use the console, or None when they may."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return "not_staff"
    if not staff_has_mfa(user):
        return "mfa_required"
    if not session_passed_mfa(request):
        return "mfa_session"
    return None


class NexowAdminSite(AdminSite):
    site_header = "Nexow console"
    site_title = "Nexow console"
    index_title = "Platform administration"
    enable_nav_sidebar = True

    def has_permission(self, request: HttpRequest) -> bool:
        return request.user.is_authenticated and console_refusal(request) is None

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Sends anonymous visitors to the portal sign-in; explains a refusal to everyone else."""
        index = reverse("admin:index", current_app=self.name)
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or index
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = index
        user = request.user
        if not user.is_authenticated:
            query = urlencode({REDIRECT_FIELD_NAME: next_url})
            return HttpResponseRedirect(f"{reverse('account_login')}?{query}")
        reason = console_refusal(request)
        if reason is None:
            return HttpResponseRedirect(next_url)
        # The portal layout, not the admin's: the admin context lists models the user may not see.
        reauth_query = urlencode({REDIRECT_FIELD_NAME: next_url})
        context = {"reason": reason, "mfa_url": reverse("mfa_index"),
                   "reauth_url": f"{reverse('mfa_reauthenticate')}?{reauth_query}"}
        return render(request, "admin/nexow_refused.html", context, status=403)


class NexowAdminConfig(AdminConfig):
    """Installed in place of ``django.contrib.admin`` so that `admin.site` is `NexowAdminSite`."""

    default_site = "nexow_site.admin_site.NexowAdminSite"
