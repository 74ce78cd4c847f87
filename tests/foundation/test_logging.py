"""Structured logs carry the request id and never a secret."""

import json
import logging

from nexow_site.observability import JsonFormatter, RedactSecretsFilter, redact, request_id_var


def test_json_lines_carry_the_request_id():
    token = request_id_var.set("req-1234abcd")
    try:
        record = logging.LogRecord("nexow.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello world"
    assert line["request_id"] == "req-1234abcd"
    assert line["level"] == "INFO"


def test_secrets_are_redacted_before_any_handler_sees_them():
    samples = {
        "key nx_live_AbC123xyz789_q1w2 used": "key nx_live_[REDACTED] used",
        "Authorization: Bearer abc.def.ghi": "Authorization: Bearer [REDACTED]",
        "login password=hunter2&next=/": "login password=[REDACTED]&next=/",
        "db postgres://app:s3cret@db:5432/x": "db postgres://app:[REDACTED]@db:5432/x",
    }
    for raw, expected in samples.items():
        assert redact(raw) == expected


def test_one_time_tokens_in_paths_are_redacted():
    from nexow_site.observability import redact_path

    assert redact_path("/api/v1/invitations/abcDEF123/accept/") == "/api/v1/invitations/[REDACTED]/accept/"
    assert redact_path("/reports/unsubscribe/tok.en-1/") == "/reports/unsubscribe/[REDACTED]/"
    assert redact_path("/api/v1/orgs/acme/members/") == "/api/v1/orgs/acme/members/"


def test_redaction_filter_rewrites_the_record(caplog):
    record = logging.LogRecord("nexow.test", logging.INFO, __file__, 1, "token=%s", ("tok_123",), None)
    RedactSecretsFilter().filter(record)
    assert record.getMessage() == "token=[REDACTED]"
