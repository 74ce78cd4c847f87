"""Alert payloads for risk events, in the formats organisations' webhooks expect.

A breach (an order refused by a limit) or a kill-switch event becomes an `AlertEvent`;
`build_payload` renders it as the JSON body of a generic webhook, a Slack incoming webhook,
a Discord webhook or a Telegram Bot API `sendMessage` call. Text that comes from the event
(symbols, reasons, names chosen by tenants) is escaped for each format and mentions are
disabled, so an alert can never ping a whole channel or inject markup. Sending (with the SSRF
checks of `ssrf.py` on every hop) belongs to the platform's services.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trading.engine.hooks import CheckResult

FORMATS: tuple[str, ...] = ("json", "slack", "discord", "telegram")
KINDS: tuple[str, ...] = ("breach", "kill", "rearm")
PAYLOAD_VERSION = 1

_TITLES = {
    "breach": "Risk limit breached",
    "kill": "Kill switch tripped",
    "rearm": "Kill switch re-armed",
}
# Discord embed colours: red for a halt, amber for a refused order, green for a re-arm.
_COLOURS = {"kill": 0xD32F2F, "breach": 0xF9A825, "rearm": 0x2E7D32}
_SEVERITY = {"kill": "critical", "breach": "warning", "rearm": "info"}


class AlertError(ValueError):
    """An event or format that cannot be rendered."""


@dataclass(frozen=True, slots=True)
class AlertEvent:
    kind: str  # "breach", "kill" or "rearm"
    rule: str
    reason: str
    at: int  # ns since the Unix epoch, UTC
    organisation: str
    strategy: str = ""
    deployment: str = ""
    actor: str = ""  # who tripped or re-armed, "system" for the rulebook
    url: str = ""  # the portal page of the deployment, for a "view" link

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AlertError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    @property
    def severity(self) -> str:
        return _SEVERITY[self.kind]

    @property
    def title(self) -> str:
        return f"{_TITLES[self.kind]}: {self.rule}" if self.rule else _TITLES[self.kind]

    @property
    def occurred_at(self) -> str:
        moment = datetime.fromtimestamp(self.at / 1e9, tz=UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    def where(self) -> str:
        parts = [self.organisation, self.strategy, self.deployment]
        return " / ".join(p for p in parts if p)


def alert_from_check(
    result: CheckResult,
    *,
    at: int,
    organisation: str,
    strategy: str = "",
    deployment: str = "",
    url: str = "",
) -> AlertEvent:
    """The alert for a rulebook answer: a halt is a kill event, any other refusal a breach."""
    return AlertEvent(
        kind="kill" if result.halt else "breach",
        rule=result.rule,
        reason=result.reason,
        at=at,
        organisation=organisation,
        strategy=strategy,
        deployment=deployment,
        actor="system" if result.halt else "",
        url=url,
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn only needs these three; escaping them also defuses <!channel> mentions.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def generic_payload(event: AlertEvent) -> dict[str, Any]:
    return {
        "type": f"nexow.risk.{event.kind}",
        "version": PAYLOAD_VERSION,
        "severity": event.severity,
        "rule": event.rule,
        "reason": event.reason,
        "occurred_at": event.occurred_at,
        "organisation": event.organisation,
        "strategy": event.strategy,
        "deployment": event.deployment,
        "actor": event.actor,
        "url": event.url,
    }


def slack_payload(event: AlertEvent) -> dict[str, Any]:
    context = f"{_slack_escape(event.where())} · {event.occurred_at}"
    if event.actor:
        context += f" · by {_slack_escape(event.actor)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(event.title, 150)}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(_slack_escape(event.reason), 3000)},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(context, 3000)}]},
    ]
    if event.url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in Nexow"},
                        "url": event.url,
                    }
                ],
            }
        )
    fallback = _slack_escape(f"{event.title} ({event.where()}): {event.reason}")
    return {"text": _clip(fallback, 3000), "blocks": blocks}


def discord_payload(event: AlertEvent) -> dict[str, Any]:
    fields = [{"name": "Rule", "value": _clip(event.rule or "-", 1024), "inline": True}]
    for name, value in (
        ("Organisation", event.organisation),
        ("Strategy", event.strategy),
        ("Deployment", event.deployment),
        ("By", event.actor),
    ):
        if value:
            fields.append({"name": name, "value": _clip(value, 1024), "inline": True})
    embed: dict[str, Any] = {
        "title": _clip(event.title, 256),
        "description": _clip(event.reason, 4096),
        "color": _COLOURS[event.kind],
        "timestamp": event.occurred_at,
        "fields": fields,
    }
    if event.url:
        embed["url"] = event.url
    return {
        "content": _clip(f"{event.title} ({event.where()})", 2000),
        "embeds": [embed],
        # Never let text from the event mention @everyone, roles or users.
        "allowed_mentions": {"parse": []},
    }


def telegram_payload(event: AlertEvent, *, chat_id: str | int) -> dict[str, Any]:
    def esc(text: str, limit: int) -> str:
        # Clip before escaping: cutting the escaped text could split an entity or a tag.
        return html.escape(_clip(text, limit), quote=False)

    when = event.occurred_at + (f" · by {event.actor}" if event.actor else "")
    lines = [
        f"<b>{esc(event.title, 200)}</b>",
        esc(event.reason, 600),
        f"<i>{esc(event.where(), 300)}</i>",
        esc(when, 200),
    ]
    link = f'<a href="{html.escape(event.url, quote=True)}">Open in Nexow</a>'
    if event.url and len("\n".join(lines)) + len(link) < 4096:
        lines.append(link)
    return {
        "chat_id": chat_id,
        "text": "\n".join(lines),
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }


def build_payload(
    fmt: str, event: AlertEvent, *, telegram_chat_id: str | int | None = None
) -> dict[str, Any]:
    """The JSON body to POST for `event` in format `fmt` (one of `FORMATS`)."""
    if fmt == "json":
        return generic_payload(event)
    if fmt == "slack":
        return slack_payload(event)
    if fmt == "discord":
        return discord_payload(event)
    if fmt == "telegram":
        if telegram_chat_id is None or telegram_chat_id == "":
            raise AlertError("the telegram format needs telegram_chat_id")
        return telegram_payload(event, chat_id=telegram_chat_id)
    raise AlertError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
