from django.apps import AppConfig


class NexowSiteConfig(AppConfig):
    name = "nexow_site"
    verbose_name = "Nexow platform"
