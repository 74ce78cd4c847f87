"""Portal pages of accounts: home, organisations, members and invitations, API keys, audit log.

Views stay thin: they resolve the organisation and the member's standing (`selectors.caller_for`),
parse a form, call a service, and render. Another organisation's page is a 404, as on the API;
a member without the scope a page needs gets a 403. Service refusals (`ApplicationError`) come
back inline on the form. The sign-in side (login, sign-up, MFA, password) is allauth's, drawn in
the site layout by ``accounts/templates/allauth/layouts``; `LoginView` only adds the right status
code when failed logins are throttled.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from http import HTTPStatus

from allauth.account.views import LoginView as AllauthLoginView
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import forms, selectors, services
from accounts.middleware import SESSION_KEY, remember_organization
from accounts.permissions import Role, role_can_grant
from accounts.portal import member_or_404, member_reauthentication_required, require_scope
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError

AUDIT_PAGE_SIZE = 50


def login_retry_after_seconds() -> int:
    """How long a throttled client should wait: the longest window of the "login_failed" rates
    (per address and per e-mail), e.g. 300 for ``"10/m/ip,5/5m/key"``."""
    from allauth.account import app_settings
    from allauth.core.internal.ratelimit import parse_rates

    rates = parse_rates(app_settings.RATE_LIMITS.get("login_failed"))
    return int(max((rate.duration for rate in rates), default=60))


class LoginView(AllauthLoginView):
    """allauth's login, answering 429 (with Retry-After) once failed attempts are throttled."""

    def form_invalid(self, form) -> HttpResponse:
        response = super().form_invalid(form)
        codes = {e.code for errors in form.errors.as_data().values() for e in errors}
        if "too_many_login_attempts" in codes:
            response.status_code = HTTPStatus.TOO_MANY_REQUESTS
            response["Retry-After"] = str(login_retry_after_seconds())
        return response


login = LoginView.as_view()


# --- helpers --------------------------------------------------------------------------------

_caller = member_or_404
_require = require_scope


def _grantable_roles(caller: Caller) -> list[str]:
    return [role.value for role in Role if role_can_grant(caller.role, role.value)]


def _page(template: str, request: HttpRequest, caller: Caller, context: dict,
          status: int = 200) -> HttpResponse:
    return render(request, template, {"caller": caller, "organization": caller.organization,
                                      **context}, status=status)


# --- home and organisations -----------------------------------------------------------------

def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("account_login")
    organization = getattr(request, "organization", None)
    if organization is None:
        return redirect("accounts:org-create")
    return redirect("trading:dashboard", slug=organization.slug)


@login_required
def organization_create(request: HttpRequest) -> HttpResponse:
    form = forms.OrganizationCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organization = services.organization_create(
                name=form.cleaned_data["name"], slug=form.cleaned_data["slug"] or None,
                actor=request.user, request=request,
            )
        except ApplicationError as error:
            forms.add_service_error(form, error)
        else:
            remember_organization(request, organization)
            messages.success(request, f"Organisation “{organization.name}” created.")
            return redirect("trading:dashboard", slug=organization.slug)
    status = 400 if form.errors else 200
    return render(request, "accounts/organization_create.html", {"form": form}, status=status)


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("organization", "")
    organization = selectors.organization_list_for_user(user=request.user).filter(slug=slug).first()
    if organization is None:
        raise Http404("No such organisation.")
    remember_organization(request, organization)
    return redirect("trading:dashboard", slug=organization.slug)


@login_required
def organization_home(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    members = selectors.membership_list(organization=caller.organization)
    return _page("accounts/organization_home.html", request, caller, {
        "member_count": members.count(),
        "role_label": Role(caller.role).label,
    })


def _settings_page(request: HttpRequest, caller: Caller, *, form=None, delete_form=None,
                   status: int = 200) -> HttpResponse:
    organization = caller.organization
    return _page("accounts/organization_settings.html", request, caller, {
        "form": form or forms.OrganizationSettingsForm(initial={"name": organization.name}),
        "delete_form": delete_form or forms.OrganizationDeleteForm(slug=organization.slug),
        "can_edit": caller.has_scope("org:write"),
        "can_delete": caller.has_scope("org:admin"),
    }, status=status)


@login_required
def organization_settings(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    if request.method != "POST":
        return _settings_page(request, caller)
    _require(caller, "org:write")
    form = forms.OrganizationSettingsForm(request.POST)
    if form.is_valid():
        try:
            services.organization_update(organization=caller.organization,
                                         name=form.cleaned_data["name"],
                                         actor=request.user, request=request)
        except ApplicationError as error:
            forms.add_service_error(form, error)
        else:
            messages.success(request, "Organisation settings saved.")
            return redirect("accounts:org-settings", slug=slug)
    return _settings_page(request, caller, form=form, status=400)


@login_required
@require_POST
@member_reauthentication_required
def organization_delete(request: HttpRequest, slug: str) -> HttpResponse:
    """Owners only, after typing the slug and a recent re-authentication."""
    caller = _caller(request, slug)
    _require(caller, "org:admin")
    form = forms.OrganizationDeleteForm(request.POST, slug=caller.organization.slug)
    if not form.is_valid():
        return _settings_page(request, caller, delete_form=form, status=400)
    services.organization_delete(organization=caller.organization, actor=request.user,
                                 request=request)
    request.session.pop(SESSION_KEY, None)
    messages.success(request, f"“{caller.organization.name}” was deleted.")
    return redirect("accounts:home")


@login_required
@require_POST
def organization_leave(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    try:
        services.membership_leave(caller=caller, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("accounts:org-settings", slug=slug)
    request.session.pop(SESSION_KEY, None)
    messages.success(request, f"You left “{caller.organization.name}”.")
    return redirect("accounts:home")


# --- members and invitations ----------------------------------------------------------------

def _members_page(request: HttpRequest, caller: Caller, invite_form: forms.InvitationForm,
                  status: int = 200) -> HttpResponse:
    organization = caller.organization
    can_manage = caller.has_scope("members:write")
    grantable = _grantable_roles(caller)
    members = []
    for membership in selectors.membership_list(organization=organization):
        manageable = (can_manage and membership.user_id != request.user.pk
                      and role_can_grant(caller.role, membership.role))
        members.append({
            "membership": membership,
            "manageable": manageable,
            "role_form": forms.MemberRoleForm(
                initial={"role": membership.role}, grantable_roles=grantable,
                prefix=f"m{membership.pk}",
            ) if manageable else None,
        })
    invitations = list(selectors.invitation_list(organization=organization)) if can_manage else []
    return _page("accounts/members.html", request, caller, {
        "members": members,
        "invitations": invitations,
        "can_manage": can_manage,
        "invite_form": invite_form,
    }, status=status)


@login_required
def members(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "members:read")
    form = forms.InvitationForm(grantable_roles=_grantable_roles(caller))
    return _members_page(request, caller, form)


@login_required
@require_POST
def invitation_create(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "members:write")
    form = forms.InvitationForm(request.POST, grantable_roles=_grantable_roles(caller))
    if form.is_valid():
        try:
            invitation, _token = services.invitation_create(
                organization=caller.organization, email=form.cleaned_data["email"],
                role=form.cleaned_data["role"], caller=caller, request=request,
            )
        except ApplicationError as error:
            forms.add_service_error(form, error)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("accounts:members", slug=slug)
    return _members_page(request, caller, form, status=400)


def _membership_of(caller: Caller, membership_id: int):
    membership = (selectors.membership_list(organization=caller.organization)
                  .filter(pk=membership_id).first())
    if membership is None:
        raise Http404("No such member.")
    return membership


@login_required
@require_POST
def member_change_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "members:write")
    membership = _membership_of(caller, membership_id)
    form = forms.MemberRoleForm(request.POST, grantable_roles=_grantable_roles(caller),
                                prefix=f"m{membership.pk}")
    if not form.is_valid():
        messages.error(request, "Choose one of the roles offered.")
        return redirect("accounts:members", slug=slug)
    try:
        services.membership_change_role(membership=membership, role=form.cleaned_data["role"],
                                        caller=caller, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request,
                         f"{membership.user.email} is now {membership.get_role_display()}.")
    return redirect("accounts:members", slug=slug)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "members:write")
    membership = _membership_of(caller, membership_id)
    try:
        services.membership_remove(membership=membership, caller=caller, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{membership.user.email} was removed.")
    return redirect("accounts:members", slug=slug)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, slug: str, invitation_id: int) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "members:write")
    invitation = (selectors.invitation_list(organization=caller.organization)
                  .filter(pk=invitation_id).first())
    if invitation is None:
        raise Http404("No such invitation.")
    try:
        services.invitation_revoke(invitation=invitation, caller=caller, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"The invitation to {invitation.email} was revoked.")
    return redirect("accounts:members", slug=slug)


@login_required
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the invitation e-mail. Signing in (or up) first is handled by login_required,
    which brings the person back here; accepting is a POST so that a mail scanner following the
    link does not accept on their behalf."""
    error = None
    if request.method == "POST":
        try:
            membership = services.invitation_accept(token=token, user=request.user,
                                                    request=request)
        except ApplicationError as exc:
            error = exc.message
        else:
            remember_organization(request, membership.organization)
            messages.success(request, f"You joined “{membership.organization.name}” as "
                                      f"{membership.get_role_display()}.")
            return redirect("trading:dashboard", slug=membership.organization.slug)
    return render(request, "accounts/invitation_accept.html", {"error": error},
                  status=400 if error else 200)


# --- API keys -------------------------------------------------------------------------------

def _api_keys_page(request: HttpRequest, caller: Caller, form: forms.ApiKeyCreateForm,
                   created=None, plaintext: str | None = None, status: int = 200) -> HttpResponse:
    keys = selectors.api_key_list(organization=caller.organization, caller=caller)
    response = _page("accounts/api_keys.html", request, caller, {
        "keys": keys,
        "form": form,
        "created": created,
        "plaintext": plaintext,
        "can_create": caller.has_scope("keys:write"),
        "sees_all": caller.has_scope("keys:admin"),
    }, status=status)
    if plaintext:
        # The secret is in this response only: no cache may keep it.
        response["Cache-Control"] = "no-store"
    return response


@never_cache
@login_required
@member_reauthentication_required(allow_get=True)
def api_keys(request: HttpRequest, slug: str) -> HttpResponse:
    """Lists the keys; a POST creates one, which needs a recent re-authentication (allauth
    suspends the POST, asks for the password or a TOTP code, then replays it)."""
    caller = _caller(request, slug)
    form = forms.ApiKeyCreateForm(request.POST or None, held_scopes=caller.scopes)
    if request.method == "POST":
        _require(caller, "keys:write")
        if form.is_valid():
            try:
                key, plaintext = services.api_key_create(
                    caller=caller, name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"] or None,
                    expires_in_days=form.cleaned_data["expires_in_days"], request=request,
                )
            except ApplicationError as error:
                forms.add_service_error(form, error)
            else:
                fresh = forms.ApiKeyCreateForm(held_scopes=caller.scopes)
                return _api_keys_page(request, caller, fresh, created=key, plaintext=plaintext,
                                      status=201)
        return _api_keys_page(request, caller, form, status=400)
    return _api_keys_page(request, caller, form)


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, slug: str, key_id: int) -> HttpResponse:
    caller = _caller(request, slug)
    key = (selectors.api_key_list(organization=caller.organization, caller=caller)
           .filter(pk=key_id).first())
    if key is None:
        raise Http404("No such key.")
    try:
        services.api_key_revoke(key=key, caller=caller, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Key “{key.name}” ({key.prefix}…) revoked; it stops working "
                                  "immediately.")
    return redirect("accounts:api-keys", slug=slug)


# --- audit log ------------------------------------------------------------------------------

def _audit_filter(request: HttpRequest, caller: Caller) -> tuple[forms.AuditFilterForm, dict]:
    actors = [(m.user_id, m.user.email)
              for m in selectors.membership_list(organization=caller.organization)]
    form = forms.AuditFilterForm(request.GET or None, actors=actors)
    criteria: dict = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        criteria["action"] = data["action"] or None
        criteria["actor_id"] = data["actor"]
        if data["since"]:
            criteria["since"] = datetime.combine(data["since"], time.min, tzinfo=UTC)
        if data["until"]:
            # Inclusive end date: everything before the next midnight.
            criteria["until"] = datetime.combine(data["until"] + timedelta(days=1), time.min,
                                                 tzinfo=UTC)
    return form, criteria


@login_required
def audit_log(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "audit:read")
    form, criteria = _audit_filter(request, caller)
    events = selectors.audit_event_list(organization=caller.organization, **criteria)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return _page("accounts/audit_log.html", request, caller, {
        "form": form, "page": page, "query": query.urlencode(),
    }, status=400 if form.errors else 200)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _audit_rows(events) -> Iterator[list[str]]:
    yield ["created_at", "sequence", "actor", "action", "target_type", "target_id", "target",
           "ip_address", "request_id", "metadata", "entry_hash"]
    for event in events.iterator(chunk_size=1000):
        yield [event.created_at.isoformat(), str(event.sequence), event.actor_label,
               event.action, event.target_type, event.target_id, event.target_label,
               event.ip_address or "", event.request_id, _json(event.metadata), event.entry_hash]


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _csv_safe(cell: str) -> str:
    # Spreadsheets execute cells starting with these characters as formulas.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


@login_required
def audit_log_csv(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    _require(caller, "audit:read")
    form, criteria = _audit_filter(request, caller)
    if form.errors:
        return HttpResponse("Invalid filter: " + "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()),
            status=400, content_type="text/plain")
    events = selectors.audit_event_list(organization=caller.organization, **criteria)
    writer = csv.writer(_Echo())
    stream = (writer.writerow([_csv_safe(cell) for cell in row]) for row in _audit_rows(events))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(stream, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{caller.organization.slug}-{stamp}.csv"'
    )
    return response

