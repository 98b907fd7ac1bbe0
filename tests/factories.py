"""Factories that keep accounts consistent: related rows share one account."""

import factory
from django.utils import timezone
from django_scopes import scopes_disabled

from inboxhub.models import Account, Membership, Team, User
from inboxhub.provisioning import provision_account

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Sequence(lambda n: f"Person {n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    account = factory.LazyFunction(lambda: make_account().account)
    user = factory.SubFactory(UserFactory)
    username = factory.Sequence(lambda n: f"member{n}")
    seat = Membership.Seat.SERVICE_HUB
    permission = Membership.Permission.AGENT
    joined_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)


_counter = iter(range(1, 10**9))


def make_account(
    subdomain: str | None = None, *, tier: str = Account.Tier.PROFESSIONAL, **kwargs
) -> Membership:
    """Provision a whole account (default inbox, fallback address, pipeline); returns its super admin."""
    n = next(_counter)
    subdomain = subdomain or f"acct{n}"
    return provision_account(
        subdomain=subdomain,
        company_name=kwargs.pop("company_name", f"Company {n}"),
        full_name=kwargs.pop("full_name", f"Owner {n}"),
        email=kwargs.pop("email", f"owner{n}@{subdomain}.example"),
        password=kwargs.pop("password", PASSWORD),
        tier=tier,
    )
