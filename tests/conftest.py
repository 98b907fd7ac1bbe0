"""Shared fixtures: admin (super admin of account A), agent (same account), outsider (account B).

Fixtures run with django-scopes disabled (pretix's hook below), so they create and read
tenant rows without `scopes_disabled()`. Test bodies stay scoped: a test that reads rows to
check what was saved says so with `scopes_disabled()` or the `unscoped` fixture.
"""

import inspect

import pytest
from django_scopes import scopes_disabled

from inboxhub.models import Membership
from tests.factories import MembershipFactory, make_account
from tests.smarthost import smarthost


def pytest_configure(config):
    # Runs in every xdist worker. Real hashing costs a third of a second per user; no test is
    # about the hash itself (check_password works with any hasher).
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    # A yield fixture is left alone: its own scope (`unscoped`, `in_scope`) must outlive its
    # setup, which leaving this block around it would undo.
    if inspect.isgeneratorfunction(fixturedef.func):
        yield
    else:
        with scopes_disabled():
            yield


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


@pytest.fixture
def mail_server(settings):
    """A real SMTP server on loopback, configured as the outbound smarthost; what it captured."""
    with smarthost(settings) as handler:
        yield handler
