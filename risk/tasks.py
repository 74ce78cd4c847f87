"""Celery entry points of the risk app; thin: they take ids and call `risk.services`.

``risk.deliver_alert`` sends one alert. It is idempotent (the service locks the delivery row and
returns at once when it was already delivered), and a transient failure — a timeout, a refused
connection, a 5xx, 408 or 429 — is retried with exponential backoff up to `MAX_RETRIES` times;
the last attempt marks the delivery failed. ``risk.sweep_alerts`` re-enqueues deliveries left
pending (a message lost while the broker was down).
"""

from __future__ import annotations

from celery import shared_task

from risk import services

MAX_RETRIES = 5


@shared_task(bind=True, name="risk.deliver_alert", acks_late=True,
             reject_on_worker_lost=True, ignore_result=True, time_limit=120,
             soft_time_limit=100, max_retries=MAX_RETRIES)
def deliver_alert(self, delivery_id: int) -> str:
    final = self.request.retries >= MAX_RETRIES
    try:
        return services.alert_deliver(delivery_id=delivery_id, final_attempt=final)
    except services.TransientDeliveryError as exc:
        # 2, 4, 8, 16, 32 s (capped at 5 minutes): the receiver gets time to recover.
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 1))) from exc


@shared_task(name="risk.sweep_alerts", ignore_result=True, time_limit=60,
             soft_time_limit=50)
def sweep_alerts() -> int:
    return len(services.alert_deliveries_pending())
