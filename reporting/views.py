"""Portal pages of reporting (server-rendered inside base.html): the report archive with a
generate form and downloads, the caller's subscriptions and deliveries, and the unsubscribe page
reached from e-mails without signing in. Thin: parse, call a service or selector, render."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.portal import member_or_404
from accounts.selectors import Caller
from nexow_site.errors import ApplicationError, NotFound
from reporting import selectors, services, sources
from reporting.models import (
    KIND_FORMATS,
    SUBSCRIPTION_REPORT_KIND,
    ReportFormat,
    ReportKind,
    ReportStatus,
    SubscriptionKind,
    kinds_visible_to,
)


def _caller(request: HttpRequest, slug: str) -> Caller:
    caller = member_or_404(request, slug)
    if not caller.has_scope("reports:read"):
        raise Http404("No such organisation.")
    return caller


class _JsonField(forms.CharField):
    def to_python(self, value):
        text = super().to_python(value) or "{}"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise forms.ValidationError("Parameters must be a JSON object.")
        return data


def _source_choices(organization) -> list[tuple[str, str]]:
    """The organisation's deployments and broker accounts, as report sources."""
    from trading.selectors_live import broker_account_list, deployment_list

    deployments = [(f"deployment:{d.pk}",
                    f"Deployment {d.pk}: {d.name or d.strategy_version.strategy.name} "
                    f"on {d.broker_account.name} ({d.status})")
                   for d in deployment_list(organization=organization).order_by("pk")]
    accounts = [(f"broker_account:{a.pk}", f"Broker account {a.name} ({a.kind}, {a.mode})")
                for a in broker_account_list(organization=organization)]
    return [("", "— as in the parameters —"), *deployments, *accounts]


class _SourceMixin:
    """A choice of the organisation's deployment or broker account, merged into the
    parameters as ``deployment`` or ``broker_account``."""

    def _add_source(self, organization) -> None:
        self.fields["source"] = forms.ChoiceField(
            choices=_source_choices(organization), required=False,
            label="Deployment or broker account",
            help_text="Statements, tax, RTS 22, best-execution (and performance, for a "
                      "deployment) from its fills.")

    def parameters_with_source(self) -> dict:
        params = dict(self.cleaned_data.get("parameters") or {})
        source = self.cleaned_data.get("source")
        if source:
            field, _, pk = source.partition(":")
            params.pop("deployment", None)
            params.pop("broker_account", None)
            params[field] = int(pk)
        return params


class GenerateForm(_SourceMixin, forms.Form):
    kind = forms.ChoiceField(choices=ReportKind.choices)
    format = forms.ChoiceField(choices=[("", "default"), *ReportFormat.choices], required=False)
    parameters = _JsonField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                            help_text='e.g. {"simulation_id": 12, "benchmark_symbol": "SPY"} '
                                      'or {"start": "2026-01-01", "end": "2026-01-31"} with a '
                                      'deployment chosen above')

    def __init__(self, *args, role: str, organization, **kwargs):
        super().__init__(*args, **kwargs)
        visible = set(kinds_visible_to(role))
        self.fields["kind"].choices = [c for c in ReportKind.choices if c[0] in visible]
        self._add_source(organization)
        self.order_fields(["kind", "format", "source", "parameters"])


class SubscribeForm(_SourceMixin, forms.Form):
    kind = forms.ChoiceField(choices=SubscriptionKind.choices)
    parameters = _JsonField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, role: str, organization, **kwargs):
        super().__init__(*args, **kwargs)
        visible = set(kinds_visible_to(role))
        self.fields["kind"].choices = [c for c in SubscriptionKind.choices
                                       if SUBSCRIPTION_REPORT_KIND[c[0]] in visible]
        self._add_source(organization)
        self.order_fields(["kind", "source", "parameters"])


def _reports_page(request: HttpRequest, caller: Caller, form: GenerateForm,
                  status: int = 200) -> HttpResponse:
    reports = selectors.report_list(organization=caller.organization, caller=caller)[:100]
    return render(request, "reporting/reports.html", {
        "caller": caller, "organization": caller.organization, "reports": reports,
        "form": form, "can_generate": caller.has_scope("reports:write"),
        "formats": {k: ", ".join(v) for k, v in KIND_FORMATS.items()}}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def reports(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    if request.method == "GET":
        return _reports_page(request, caller, GenerateForm(role=caller.role,
                                                           organization=caller.organization))
    if not caller.has_scope("reports:write"):
        raise PermissionDenied("Your role does not allow generating reports.")
    form = GenerateForm(request.POST, role=caller.role, organization=caller.organization)
    if not form.is_valid():
        return _reports_page(request, caller, form, status=400)
    try:
        parameters = form.parameters_with_source()
        sources.parameters_check(organization=caller.organization,
                                 kind=form.cleaned_data["kind"], parameters=parameters,
                                 caller=caller)
        report = services.report_request(
            organization=caller.organization, caller=caller, kind=form.cleaned_data["kind"],
            fmt=form.cleaned_data["format"] or None, parameters=parameters, request=request)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _reports_page(request, caller, form, status=400)
    messages.success(request, f"Report #{report.pk} queued.")
    return redirect("reporting:reports", slug=slug)


@login_required
def report_download(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = _caller(request, slug)
    report = get_object_or_404(selectors.report_list(organization=caller.organization,
                                                     caller=caller), pk=pk)
    if report.status != ReportStatus.SUCCEEDED or not report.file:
        raise Http404("The report has no file yet.")
    return FileResponse(report.file.open("rb"), as_attachment=True, filename=report.filename,
                        content_type=report.content_type)


def _subscriptions_page(request: HttpRequest, caller: Caller, form: SubscribeForm,
                        status: int = 200) -> HttpResponse:
    org = caller.organization
    return render(request, "reporting/subscriptions.html", {
        "caller": caller, "organization": org, "form": form,
        "subscriptions": selectors.subscription_list(organization=org, caller=caller),
        "deliveries": selectors.delivery_list(organization=org, caller=caller)[:50]},
        status=status)


@login_required
@require_http_methods(["GET", "POST"])
def subscriptions(request: HttpRequest, slug: str) -> HttpResponse:
    caller = _caller(request, slug)
    if request.method == "GET":
        return _subscriptions_page(request, caller, SubscribeForm(
            role=caller.role, organization=caller.organization))
    form = SubscribeForm(request.POST, role=caller.role, organization=caller.organization)
    if not form.is_valid():
        return _subscriptions_page(request, caller, form, status=400)
    try:
        parameters = form.parameters_with_source()
        sources.parameters_check(organization=caller.organization,
                                 kind=SUBSCRIPTION_REPORT_KIND[form.cleaned_data["kind"]],
                                 parameters=parameters, caller=caller)
        services.subscription_create(organization=caller.organization, caller=caller,
                                     kind=form.cleaned_data["kind"], parameters=parameters,
                                     request=request)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _subscriptions_page(request, caller, form, status=400)
    messages.success(request, "Subscribed.")
    return redirect("reporting:subscriptions", slug=slug)


@login_required
@require_POST
def subscription_toggle(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    caller = _caller(request, slug)
    sub = get_object_or_404(selectors.subscription_list(organization=caller.organization,
                                                        caller=caller), pk=pk)
    services.subscription_update(subscription=sub, actor=request.user, active=not sub.active,
                                 request=request)
    return redirect("reporting:subscriptions", slug=slug)


@csrf_exempt  # the signed token is the credential; mail clients' one-click POST has no cookie
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation (link scanners must not unsubscribe anyone); POST unsubscribes."""
    if request.method == "GET":
        return render(request, "reporting/unsubscribe.html", {"token": token, "done": False})
    try:
        sub = services.subscription_unsubscribe(token=token, request=request)
    except NotFound as exc:
        raise Http404(exc.message) from None
    return render(request, "reporting/unsubscribe.html",
                  {"token": token, "done": True, "subscription": sub})
