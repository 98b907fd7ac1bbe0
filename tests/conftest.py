"""Shared fixtures: admin (super admin of account A), agent (same account), outsider (account B)."""

import pytest
from django_scopes import scopes_disabled

from inboxhub.models import Membership
from tests.factories import MembershipFactory, make_account


@pytest.fixture
def admin(db) -> Membership:
    return make_account("alpha", company_name="Alpha", full_name="Alice Admin", email="alice@alpha.example")


@pytest.fixture
def agent(admin) -> Membership:
    return MembershipFactory(
        account=admin.account, user__email="bob@alpha.example", user__full_name="Bob Agent", username="bob"
    )


@pytest.fixture
def outsider(db) -> Membership:
    return make_account(
        "bravo", company_name="Bravo", full_name="Charlie Outsider", email="charlie@bravo.example"
    )


@pytest.fixture
def unscoped():
    """Tests read tenant rows directly to check what was saved."""
    with scopes_disabled():
        yield
