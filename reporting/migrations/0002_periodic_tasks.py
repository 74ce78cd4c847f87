"""Create the django-celery-beat schedules that run report subscriptions (one per kind)."""

from django.db import migrations


def create_tasks(apps, schema_editor):
    from reporting.services import periodic_tasks_ensure

    periodic_tasks_ensure(apps)


def remove_tasks(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task="reporting.run_subscriptions").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_tasks, remove_tasks)]
