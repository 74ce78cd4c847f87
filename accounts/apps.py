from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Audit receivers for allauth's authentication events (login, MFA, password changes).
        from accounts import auth_events

        auth_events.connect()
