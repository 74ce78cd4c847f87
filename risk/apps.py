"""The risk app: limits, kill switch, breaches and alerts around the pure `risk.core`.

`ready()` schedules the alert sweeper, which re-enqueues deliveries whose message was lost.
"""

from __future__ import annotations

from django.apps import AppConfig

SWEEP_SCHEDULE_NAME = "risk.sweep_alerts"
TASK_ROUTES = {
    "risk.deliver_alert": {"queue": "default"},
    "risk.sweep_alerts": {"queue": "default"},
}


class RiskConfig(AppConfig):
    name = "risk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from nexow_site.celery import app

        # django-celery-beat's DatabaseScheduler copies app.conf.beat_schedule into its table
        # when beat starts, so the sweeper needs no data migration.
        schedule = dict(app.conf.beat_schedule or {})
        schedule[SWEEP_SCHEDULE_NAME] = {"task": "risk.sweep_alerts", "schedule": 300.0,
                                         "options": {"queue": "default", "expires": 290}}
        app.conf.beat_schedule = schedule
        routes = app.conf.task_routes
        if routes is None or isinstance(routes, dict):
            app.conf.task_routes = {**(routes or {}), **TASK_ROUTES}
