"""The risk app: limits, kill switch, breaches and alerts around the pure `risk.core`.

Its alert sweeper (which re-enqueues deliveries whose message was lost) is scheduled in settings'
CELERY_BEAT_SCHEDULE.
"""

from django.apps import AppConfig


class RiskConfig(AppConfig):
    name = "risk"
    default_auto_field = "django.db.models.BigAutoField"
