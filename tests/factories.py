"""factory_boy factories shared by every app's tests: users, organisations, memberships and API
keys. `ApiKeyFactory` returns a key whose plaintext is on ``key.plaintext`` (it is stored nowhere
else) and makes sure the key's creator is a member of the key's organisation."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts import keys
from accounts.models import ApiKey, Membership, Organization, User
from accounts.permissions import Role, normalize_scopes, scopes_for_role


class UserFactory(DjangoModelFactory):
    """A user without a usable password (fast; tests sign in with ``force_login``). Pass
    ``password="..."`` for one that can sign in through the login page."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")

    @classmethod
    def _create(cls, model_class, *args, password: str | None = None, **kwargs):
        return model_class.objects.create_user(*args, password=password, **kwargs)


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.VIEWER


class ApiKeyFactory(DjangoModelFactory):
    """An active key; ``key.plaintext`` is the secret to send as ``Bearer``.

    ``creator_role`` is the role the creator gets in the organisation when not yet a member;
    ``scopes`` default to all of that role's scopes.
    """

    class Meta:
        model = ApiKey

    creator_role = Role.OWNER  # popped in _create: it belongs to the membership, not the key
    organization = factory.SubFactory(OrganizationFactory)
    created_by = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"key {n}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=90))
    scopes = factory.LazyAttribute(lambda o: normalize_scopes(scopes_for_role(o.creator_role)))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        creator_role = kwargs.pop("creator_role", Role.OWNER)
        membership, _ = Membership.objects.get_or_create(
            user=kwargs["created_by"], organization=kwargs["organization"],
            defaults={"role": creator_role},
        )
        plaintext = keys.generate_key()
        obj = model_class.objects.create(
            *args, prefix=keys.visible_prefix(plaintext), hashed_key=keys.hash_key(plaintext),
            **kwargs,
        )
        obj.plaintext = plaintext
        return obj
