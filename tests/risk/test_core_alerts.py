"""Alert payloads for generic JSON, Slack, Discord and Telegram webhooks."""

import json

import pytest

from risk.core.alerts import AlertError, AlertEvent, alert_from_check, build_payload
from trading.engine.hooks import CheckResult

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z

KILL = alert_from_check(
    CheckResult("max_drawdown", "max_drawdown: drawdown 10.48% exceeds the limit 10.00%", True),
    at=T0,
    organisation="Acme Capital",
    strategy="Mean reversion",
    deployment="live-1",
    url="https://nexow.example/orgs/acme/deployments/7",
)


def test_a_halting_result_becomes_a_kill_event_and_a_refusal_a_breach():
    assert (KILL.kind, KILL.severity, KILL.actor) == ("kill", "critical", "system")
    breach = alert_from_check(CheckResult("max_order_notional", "too big"), at=T0, organisation="a")
    assert (breach.kind, breach.severity) == ("breach", "warning")


def test_generic_json_payload():
    payload = build_payload("json", KILL)
    assert payload == {
        "type": "nexow.risk.kill",
        "version": 1,
        "severity": "critical",
        "rule": "max_drawdown",
        "reason": "max_drawdown: drawdown 10.48% exceeds the limit 10.00%",
        "occurred_at": "2023-11-14T22:13:20Z",
        "organisation": "Acme Capital",
        "strategy": "Mean reversion",
        "deployment": "live-1",
        "actor": "system",
        "url": "https://nexow.example/orgs/acme/deployments/7",
    }
    json.dumps(payload)  # serialisable as is


def test_slack_payload_has_a_fallback_text_and_blocks():
    payload = build_payload("slack", KILL)
    assert payload["text"] == (
        "Kill switch tripped: max_drawdown (Acme Capital / Mean reversion / live-1): "
        "max_drawdown: drawdown 10.48% exceeds the limit 10.00%"
    )
    assert payload["blocks"][0]["text"]["text"] == "Kill switch tripped: max_drawdown"
    assert payload["blocks"][-1]["elements"][0]["url"] == KILL.url


def test_slack_escapes_markup_so_a_reason_cannot_ping_the_channel():
    event = AlertEvent("breach", "restricted_symbols", "<!channel> & <@U123>", T0, "Org")
    text = build_payload("slack", event)["blocks"][1]["text"]["text"]
    assert text == "&lt;!channel&gt; &amp; &lt;@U123&gt;"


def test_discord_payload_with_embed_and_no_mentions():
    payload = build_payload("discord", KILL)
    embed = payload["embeds"][0]
    assert embed["title"] == "Kill switch tripped: max_drawdown"
    assert embed["color"] == 0xD32F2F
    assert embed["timestamp"] == "2023-11-14T22:13:20Z"
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Rule": "max_drawdown",
        "Organisation": "Acme Capital",
        "Strategy": "Mean reversion",
        "Deployment": "live-1",
        "By": "system",
    }
    assert payload["allowed_mentions"] == {"parse": []}


def test_telegram_payload_is_escaped_html_for_the_chat():
    event = AlertEvent("rearm", "", "limits <reviewed> & ok", T0, "Org", actor="alice")
    payload = build_payload("telegram", event, telegram_chat_id=-100123)
    assert payload == {
        "chat_id": -100123,
        "text": "<b>Kill switch re-armed</b>\nlimits &lt;reviewed&gt; &amp; ok\n<i>Org</i>\n"
        "2023-11-14T22:13:20Z · by alice",
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }


def test_long_reasons_are_clipped_to_each_service_limit():
    event = AlertEvent("breach", "r", "x" * 10_000, T0, "Org")
    assert len(build_payload("discord", event)["embeds"][0]["description"]) == 4096
    assert len(build_payload("slack", event)["blocks"][1]["text"]["text"]) == 3000
    assert len(build_payload("telegram", event, telegram_chat_id=1)["text"]) <= 4096


def test_unknown_formats_kinds_and_a_missing_chat_are_refused():
    with pytest.raises(AlertError, match="format must be one of json, slack, discord, telegram"):
        build_payload("teams", KILL)
    with pytest.raises(AlertError, match="telegram_chat_id"):
        build_payload("telegram", KILL)
    with pytest.raises(AlertError, match="kind must be one of"):
        AlertEvent("panic", "", "", T0, "Org")
