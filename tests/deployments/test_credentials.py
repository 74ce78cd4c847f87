"""Broker credentials: encrypted at rest, never shown, masked to the last four characters of
their key id (never a character of a secret)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from tests.trading.support import org_with_owner
from trading.crypto import decrypt_credentials, encrypt_credentials
from trading.models import BrokerAccount
from trading.services import deployments

SECRET = "s3cr3t-api-secret-9876"


def test_credentials_round_trip_with_a_configured_key(settings):
    settings.NEXOW_CREDENTIALS_KEY = Fernet.generate_key().decode()
    token = encrypt_credentials({"secret": SECRET})
    assert SECRET not in token
    assert decrypt_credentials(token) == {"secret": SECRET}


def test_production_without_a_key_refuses(settings):
    settings.NEXOW_CREDENTIALS_KEY = ""
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured):
        encrypt_credentials({"secret": SECRET})


@pytest.mark.django_db
def test_the_database_holds_no_plaintext_and_the_mask_shows_the_keys_last_four():
    org, owner = org_with_owner()
    account = deployments.broker_account_create(
        organization=org, actor=owner, name="binance", kind="ccxt", mode="live",
        credentials={"api_key": "AKIA-public-2468", "secret": SECRET})
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM trading_brokeraccount WHERE id = %s", [account.pk])
        row = " ".join(str(v) for v in cursor.fetchone())
    assert SECRET not in row and "AKIA-public" not in row
    assert BrokerAccount.objects.get(pk=account.pk).masked_credentials == "••••2468"


def test_the_mask_never_shows_any_character_of_a_secret():
    from trading.crypto import credentials_hint

    assert credentials_hint({"secret": SECRET}) == ""
    assert credentials_hint({"api_key": "short", "secret": SECRET}) == ""  # mostly shown
    assert credentials_hint({"username": "desk-trader-01", "password": SECRET}) == "r-01"
