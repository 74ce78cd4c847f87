"""The trading app: registers the ``simulation`` and ``analysis`` WebSocket streams."""

from __future__ import annotations

from django.apps import AppConfig


def simulation_belongs_to(organization_id: int, object_id: str) -> bool:
    from trading.models import Simulation

    return object_id.isdigit() and Simulation.objects.filter(
        pk=int(object_id), organization_id=organization_id).exists()


def analysis_belongs_to(organization_id: int, object_id: str) -> bool:
    from trading.models import Analysis

    return object_id.isdigit() and Analysis.objects.filter(
        pk=int(object_id), organization_id=organization_id).exists()


def deployment_belongs_to(organization_id: int, object_id: str) -> bool:
    from trading.models import Deployment

    return object_id.isdigit() and Deployment.objects.filter(
        pk=int(object_id), organization_id=organization_id).exists()


class TradingConfig(AppConfig):
    name = "trading"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Queues, routes and the sweeper's beat schedule are declared in settings (CELERY_*).
        from nexow_site.realtime import register_stream

        register_stream("simulation", scope="simulations:read", belongs_to=simulation_belongs_to)
        register_stream("analysis", scope="simulations:read", belongs_to=analysis_belongs_to)
        register_stream("deployment", scope="deployments:read",
                        belongs_to=deployment_belongs_to)
