"""Celery entry points of the reporting app; thin: they take ids and call `reporting.services`.

* ``reporting.generate_report(report_id)`` — idempotent by report id (a finished report is left
  as it is).
* ``reporting.run_subscriptions(kind, today=None)`` — run by django-celery-beat; fans out one
  ``reporting.deliver_subscription`` per active subscription for the period just ended.
* ``reporting.deliver_subscription(subscription_id, period)`` — sends that period's e-mail at most
  once; transient SMTP/network failures retry with exponential backoff (1, 2, 4, 8, 16 minutes)
  and the last attempt leaves the delivery ``failed`` with its error.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import transaction

from reporting import services

MAX_RETRIES = 5


@shared_task(name="reporting.generate_report", acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, time_limit=900, soft_time_limit=840)
def generate_report(report_id: int) -> str:
    return services.report_generate(report_id=report_id)


@shared_task(name="reporting.run_subscriptions", ignore_result=True, time_limit=300,
             soft_time_limit=280)
def run_subscriptions(kind: str, today: str | None = None) -> int:
    day = dt.date.fromisoformat(today) if today else dt.datetime.now(dt.UTC).date()
    due = services.subscriptions_due(kind=kind, today=day)
    for sub_id, period in due:
        transaction.on_commit(
            lambda s=sub_id, p=period: deliver_subscription.delay(s, p))
    return len(due)


@shared_task(bind=True, name="reporting.deliver_subscription", acks_late=True,
             reject_on_worker_lost=True, ignore_result=True, time_limit=900,
             soft_time_limit=840, max_retries=MAX_RETRIES)
def deliver_subscription(self, subscription_id: int, period: str) -> str:
    final = self.request.retries >= MAX_RETRIES
    try:
        return services.delivery_run(subscription_id=subscription_id, period=period,
                                     final_attempt=final)
    except services.TransientDeliveryError as exc:
        raise self.retry(exc=exc, countdown=60 * 2 ** self.request.retries) from exc
