"""The operator's admin console at /console/: staff only, and only with two-factor authentication.

`NexowAdminSite` replaces Django's default admin site (through `NexowAdminConfig.default_site`), so
every `admin.site.register(...)` in the apps lands here. It hardens the stock site in three ways:

* there is no separate admin password form: signing in goes through the portal's allauth login,
  which enforces the TOTP step for users who have it and shares the login rate limits (failed
  attempts are throttled per address and per e-mail on the shared cache);
* a signed-in user must be active staff **and** have an activated TOTP authenticator; staff
  without one are refused with a page telling them to enable two-factor authentication;
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


class NexowAdminSite(AdminSite):
    site_header = "Nexow console"
    site_title = "Nexow console"
    index_title = "Platform administration"
    enable_nav_sidebar = True

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and staff_has_mfa(user))

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """Sends anonymous visitors to the portal sign-in; explains a refusal to everyone else."""
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index", current_app=self.name)
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = reverse("admin:index", current_app=self.name)
        user = request.user
        if not user.is_authenticated:
            query = urlencode({REDIRECT_FIELD_NAME: next_url})
            return HttpResponseRedirect(f"{reverse('account_login')}?{query}")
        if self.has_permission(request):
            return HttpResponseRedirect(next_url)
        reason = "mfa_required" if (user.is_active and user.is_staff) else "not_staff"
        # The portal layout, not the admin's: the admin context lists models the user may not see.
        context = {"reason": reason, "mfa_url": reverse("mfa_index")}
        return render(request, "admin/nexow_refused.html", context, status=403)


class NexowAdminConfig(AdminConfig):
    """Installed in place of ``django.contrib.admin`` so that `admin.site` is `NexowAdminSite`."""

    default_site = "nexow_site.admin_site.NexowAdminSite"
