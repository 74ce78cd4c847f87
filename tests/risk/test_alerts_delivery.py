"""Alert delivery against a real HTTP server on 127.0.0.1 started by each test.

SSRF validation refuses loopback, so these tests turn on the test-only setting
``RISK_WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS`` (and one proves that without it the same URL is
refused). Private addresses stay refused either way."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from accounts.permissions import Role
from accounts.selectors import caller_for
from nexow_site.errors import ApplicationError
from risk import services
from risk.core import ssrf
from risk.models import AlertDelivery, AlertTarget, DeliveryStatus
from risk.tasks import deliver_alert
from tests.factories import OrganizationFactory
from tests.fixtures_accounts import member

AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver answering from a script: each entry is (status, headers)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": self.rfile.read(length)})
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def org(db):
    return OrganizationFactory()


@pytest.fixture
def owner(org):
    user = member(org, Role.OWNER)
    return caller_for(user=user, organization=org)


@pytest.fixture
def loopback_allowed(settings):
    settings.RISK_WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS = True


def _halt(org):
    """A halted simulation breach, with one pending delivery per enabled target."""
    services.breach_record(organization=org, source="simulation", source_id=7,
                           rule="max_drawdown", reason="max_drawdown: drawdown 20.00%",
                           at=AT, halted=True)
    return list(AlertDelivery.objects.filter(organization=org))


def _webhook(org, owner, url, **extra):
    return services.alert_target_create(organization=org, caller=owner, name="hook",
                                        kind="webhook", url=url, **extra)


def test_without_the_test_setting_a_loopback_webhook_is_refused(org, owner, receiver):
    with pytest.raises(ApplicationError) as refused:
        _webhook(org, owner, receiver.url())
    assert refused.value.fields["url"] == ["refused: 127.0.0.1 is a loopback address"]


def test_a_target_turned_loopback_later_is_not_called(org, owner, receiver, settings):
    settings.RISK_WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS = True
    _webhook(org, owner, receiver.url())
    [delivery] = _halt(org)
    settings.RISK_WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS = False
    assert deliver_alert.apply(args=[delivery.pk]).get() == "failed"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "loopback" in delivery.last_error
    assert receiver.requests == []


def test_a_json_webhook_is_signed_and_delivered_once(org, owner, receiver, loopback_allowed):
    _webhook(org, owner, receiver.url("/hook?token=abc"), secret="shh")
    [delivery] = _halt(org)
    assert deliver_alert.apply(args=[delivery.pk]).get() == "delivered"
    assert deliver_alert.apply(args=[delivery.pk]).get() == "already delivered"

    [request] = receiver.requests
    assert request["path"] == "/hook?token=abc"
    body = json.loads(request["body"])
    assert (body["type"], body["rule"], body["reason"], body["occurred_at"]) == (
        "nexow.risk.kill", "max_drawdown", "max_drawdown: drawdown 20.00%",
        "2024-03-01T12:00:00Z")
    headers = request["headers"]
    assert headers["X-Nexow-Delivery"] == str(delivery.pk)
    expected = hmac.new(b"shh", headers["X-Nexow-Timestamp"].encode() + b"." + request["body"],
                        hashlib.sha256).hexdigest()
    assert headers["X-Nexow-Signature"] == f"sha256={expected}"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 1)


def test_the_request_goes_to_the_checked_address_with_the_host_name_kept(
        org, owner, receiver, loopback_allowed, monkeypatch):
    lookups = []

    def resolver(host, port):
        lookups.append(host)
        # A rebinding DNS server would answer differently the second time; there is none.
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.0.0.1"]

    monkeypatch.setattr(ssrf, "system_resolver", resolver)
    url = f"http://hooks.example.test:{receiver.port}/hook"
    target = AlertTarget.objects.create(organization=org, name="named", kind="webhook", url=url)
    delivery = AlertDelivery.objects.create(organization=org, target=target,
                                            breach=services.breach_record(
                                                organization=org, source="simulation",
                                                source_id=1, rule="r", reason="x", at=AT))
    lookups.clear()
    assert services.alert_deliver(delivery_id=delivery.pk) == "delivered"
    assert lookups == ["hooks.example.test"]  # resolved once, for the check
    assert receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{receiver.port}"


def test_a_failing_receiver_is_retried_until_it_accepts_then_never_again(
        org, owner, receiver, loopback_allowed):
    _webhook(org, owner, receiver.url())
    [delivery] = _halt(org)
    receiver.script = [(500, {}), (503, {})]
    # The eager task retries in place: 500, 503, then 200.
    assert deliver_alert.apply(args=[delivery.pk]).get() == "delivered"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.DELIVERED, 3, "")
    assert deliver_alert.apply(args=[delivery.pk]).get() == "already delivered"
    assert len(receiver.requests) == 3


def test_a_transient_failure_keeps_the_attempt_and_its_error(org, owner, receiver,
                                                             loopback_allowed):
    _webhook(org, owner, receiver.url())
    [delivery] = _halt(org)
    receiver.script = [(500, {})]
    with pytest.raises(services.TransientDeliveryError):
        services.alert_deliver(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.PENDING, 1, "HTTP 500 from 127.0.0.1")


def test_the_last_retry_marks_the_delivery_failed(org, owner, receiver, loopback_allowed):
    _webhook(org, owner, receiver.url())
    [delivery] = _halt(org)
    receiver.script = [(500, {})] * 10
    assert deliver_alert.apply(args=[delivery.pk]).get() == "failed"
    delivery.refresh_from_db()
    # One attempt and five retries.
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 6)
    assert len(receiver.requests) == 6


def test_a_receiver_refusing_the_alert_is_not_retried(org, owner, receiver, loopback_allowed):
    _webhook(org, owner, receiver.url())
    [delivery] = _halt(org)
    receiver.script = [(404, {})]
    assert deliver_alert.apply(args=[delivery.pk]).get() == "failed"
    assert len(receiver.requests) == 1


def test_a_redirect_to_a_private_address_is_refused(org, owner, receiver, loopback_allowed):
    _webhook(org, owner, receiver.url())
    [delivery] = _halt(org)
    receiver.script = [(302, {"Location": "http://10.1.2.3/steal"})]
    assert deliver_alert.apply(args=[delivery.pk]).get() == "failed"
    delivery.refresh_from_db()
    assert delivery.last_error == "refused: 10.1.2.3 is a private address"
    assert len(receiver.requests) == 1


def test_redirects_are_followed_by_hand_up_to_three_hops(org, owner, receiver,
                                                         loopback_allowed):
    _webhook(org, owner, receiver.url("/a"))
    [delivery] = _halt(org)
    receiver.script = [(307, {"Location": "/b"}), (308, {"Location": "/c"}),
                       (307, {"Location": "/d"})]
    assert deliver_alert.apply(args=[delivery.pk]).get() == "delivered"
    assert [r["path"] for r in receiver.requests] == ["/a", "/b", "/c", "/d"]


def test_a_fourth_redirect_is_refused(org, owner, receiver, loopback_allowed):
    _webhook(org, owner, receiver.url("/a"))
    [delivery] = _halt(org)
    receiver.script = [(307, {"Location": p}) for p in ("/b", "/c", "/d", "/e")]
    assert deliver_alert.apply(args=[delivery.pk]).get() == "failed"
    delivery.refresh_from_db()
    assert delivery.last_error == "too many redirects (more than 3)"
    assert [r["path"] for r in receiver.requests] == ["/a", "/b", "/c", "/d"]


def test_a_slack_target_gets_slacks_payload(org, owner, receiver, loopback_allowed):
    _webhook(org, owner, receiver.url(), format="slack")
    [delivery] = _halt(org)
    deliver_alert.apply(args=[delivery.pk])
    body = json.loads(receiver.requests[0]["body"])
    assert body["blocks"][0]["text"]["text"] == "Kill switch tripped: max_drawdown"
    assert body["blocks"][1]["text"]["text"] == "max_drawdown: drawdown 20.00%"


def test_a_manual_trip_and_rearm_alert_every_target_once_each(org, owner):
    services.alert_target_create(organization=org, caller=owner, name="desk", kind="email",
                                 email="desk@example.com")
    services.kill_switch_trip(organization=org, reason="venue outage", caller=owner)
    services.kill_switch_rearm(organization=org, reason="venue back", caller=owner)
    for delivery in AlertDelivery.objects.filter(organization=org):
        deliver_alert.apply(args=[delivery.pk])
    assert sorted(m.subject for m in mail.outbox) == [
        f"[Nexow] Kill switch re-armed ({org.name})",
        f"[Nexow] Kill switch tripped: manual ({org.name})",
    ]


def test_refused_orders_alert_only_targets_that_asked_and_only_from_deployments(org, owner):
    services.alert_target_create(organization=org, caller=owner, name="halts", kind="email",
                                 email="halts@example.com")
    everything = services.alert_target_create(organization=org, caller=owner, name="all",
                                              kind="email", email="all@example.com",
                                              events="all")
    for source in ("simulation", "deployment"):
        services.breach_record(organization=org, source=source, source_id=1,
                               rule="max_order_notional", reason="too big", at=AT)
    assert list(AlertDelivery.objects.values_list("target", "breach__source")) == [
        (everything.pk, "deployment")]
