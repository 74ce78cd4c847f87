"""Fixtures of the portal tests: an organisation with an owner and a viewer, each with a signed-in
Django test client, and trading data built through the trading services."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.permissions import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.trading.support import finished_simulation, sma_version, synthetic_dataset


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Alpha Capital", slug="alpha")


@pytest.fixture
def owner(org):
    return MembershipFactory(organization=org, role=Role.OWNER, user=UserFactory()).user


@pytest.fixture
def viewer(org):
    return MembershipFactory(organization=org, role=Role.VIEWER, user=UserFactory()).user


@pytest.fixture
def owner_web(owner) -> Client:
    return signed_in(owner)


@pytest.fixture
def viewer_web(viewer) -> Client:
    return signed_in(viewer)


@pytest.fixture
def dataset(org, owner):
    return synthetic_dataset(org, owner, name="gbm daily", n_bars=400)


@pytest.fixture
def version(org, owner):
    return sma_version(org, owner)


@pytest.fixture
def finished(org, owner, dataset, version):
    return finished_simulation(org, owner, dataset=dataset, version=version)
