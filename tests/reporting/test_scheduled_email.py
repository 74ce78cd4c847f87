"""Scheduled report e-mails over real SMTP: exactly one message per recipient per period, with
an HTML and a text part and the PDF attached; a second run of the same task sends nothing; a
failed send is visible on the delivery and succeeds on retry."""

from __future__ import annotations

import email
import email.policy
import logging
import socket

import pytest
from aiosmtpd.controller import Controller

from accounts.permissions import Role
from nexow_site.celery import app
from reporting import services, tasks
from reporting.models import ReportDelivery
from tests.reporting.samples import account_activity_dict
from tests.reporting.support import org_with_roles, subscription

pytestmark = pytest.mark.django_db


class Collector:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(settings):
    # aiosmtpd logs every connection at INFO from its own thread, sometimes after the test's
    # output capture has closed (a "Logging error" in the run's output); only its warnings matter.
    mail_log = logging.getLogger("mail.log")
    level = mail_log.level
    mail_log.setLevel(logging.WARNING)
    handler = Collector()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    try:
        yield handler
    finally:
        controller.stop()
        mail_log.setLevel(level)


@pytest.fixture
def eager(django_capture_on_commit_callbacks):
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield lambda: django_capture_on_commit_callbacks(execute=True)
    finally:
        app.conf.task_always_eager = previous


def test_monthly_statement_is_mailed_exactly_once(smtp, eager):
    org, users = org_with_roles()
    trader = users[Role.TRADER]
    sub = subscription(org, trader, kind="monthly_statement",
                       parameters={"account": account_activity_dict()})

    # The beat entry runs on 3 February: the period just ended is January 2024.
    with eager():
        assert tasks.run_subscriptions.apply(
            kwargs={"kind": "monthly_statement", "today": "2024-02-03"}).get() == 1
    assert len(smtp.messages) == 1
    msg = smtp.messages[0]
    assert msg["To"] == trader.email
    assert "Monthly statement" in msg["Subject"] and "2024-01" in msg["Subject"]
    assert msg["List-Unsubscribe"].strip().startswith("<http")
    parts = {part.get_content_type(): part for part in msg.walk()}
    assert "text/plain" in parts and "text/html" in parts
    assert "2024-01" in parts["text/plain"].get_content()
    assert "Unsubscribe" in parts["text/html"].get_content()
    pdf = parts["application/pdf"]
    assert pdf.get_filename().endswith(".pdf")
    assert pdf.get_content().startswith(b"%PDF")

    delivery = ReportDelivery.objects.get(subscription=sub, period="2024-01")
    assert delivery.status == "sent" and delivery.attempts == 1
    assert delivery.report.sha256

    # The same task again (a beat tick twice, a re-delivered message): nothing more is sent.
    with eager():
        tasks.run_subscriptions.apply(kwargs={"kind": "monthly_statement",
                                              "today": "2024-02-03"})
    assert tasks.deliver_subscription.apply(args=(sub.pk, "2024-01")).get() == "sent"
    assert len(smtp.messages) == 1
    assert ReportDelivery.objects.filter(subscription=sub).count() == 1


def test_the_statement_covers_the_schedules_month_only(smtp):
    org, users = org_with_roles()
    sub = subscription(org, users[Role.OWNER], parameters={"account": account_activity_dict()})
    params = services.subscription_report_parameters(sub, "2024-01")
    assert (params["account"]["period_start"], params["account"]["period_end"]) == (
        "2024-01-01", "2024-01-31")
    # February: the January fills and flows are not in that month's activity.
    feb = services.subscription_report_parameters(sub, "2024-02")["account"]
    assert feb["period_end"] == "2024-02-29" and feb["fills"] == [] and feb["cash_flows"] == []


def test_a_failed_send_is_visible_and_the_retry_sends_once(smtp, settings):
    org, users = org_with_roles()
    sub = subscription(org, users[Role.OWNER], parameters={"account": account_activity_dict()})
    working_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = _free_port()  # nothing listens there: connection refused
    with pytest.raises(services.TransientDeliveryError):
        services.delivery_run(subscription_id=sub.pk, period="2024-01", final_attempt=False)
    delivery = ReportDelivery.objects.get(subscription=sub)
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "ConnectionRefusedError" in delivery.last_error
    assert smtp.messages == []

    settings.EMAIL_PORT = working_port
    assert services.delivery_run(subscription_id=sub.pk, period="2024-01") == "sent"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    assert len(smtp.messages) == 1


def test_an_inactive_subscription_sends_nothing(smtp):
    org, users = org_with_roles()
    sub = subscription(org, users[Role.OWNER], parameters={"account": account_activity_dict()})
    sub.active = False
    sub.save()
    assert services.delivery_run(subscription_id=sub.pk, period="2024-01") == "inactive"
    assert smtp.messages == []


def test_periods_of_each_schedule():
    import datetime as dt

    day = dt.date(2024, 3, 1)
    assert services.period_for("monthly_statement", day) == "2024-02"
    assert services.period_for("weekly_performance", day) == "2024-W08"
    assert services.period_for("annual_tax", day) == "2023"
    assert services.period_for("risk_alerts", day) == "2024-02-29"
    assert services.period_bounds("weekly_performance", "2024-W08") == (
        dt.date(2024, 2, 19), dt.date(2024, 2, 25))
