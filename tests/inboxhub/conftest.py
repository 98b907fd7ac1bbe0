"""Fixtures for the foundation's tests: a snapshot of every project row, members of each level."""

from collections.abc import Callable

import pytest
from django.apps import apps
from django_scopes import scopes_disabled

from inboxhub.models import Membership
from tests.factories import MembershipFactory

PROJECT_APPS = ["inboxhub", "inboxes", "channels_conn", "routing", "tickets"]


# What a request records about its own visit: when the member was last seen (assignment mail, issue 17).
VISIT_FIELDS = {"inboxhub.Membership": {"last_seen_at"}}


def project_rows() -> dict[str, list[dict]]:
    """Every row of every project model (M2M tables included), to compare before and after; the
    visit's own bookkeeping (VISIT_FIELDS) left out."""
    rows = {}
    with scopes_disabled():
        for label in PROJECT_APPS:
            for model in apps.get_app_config(label).get_models(include_auto_created=True):
                skipped = VISIT_FIELDS.get(model._meta.label, set())
                fields = [f.attname for f in model._meta.concrete_fields if f.attname not in skipped]
                rows[model._meta.label] = list(model._base_manager.order_by("pk").values(*fields))
    return rows


@pytest.fixture
def snapshot() -> Callable[[], dict[str, list[dict]]]:
    return project_rows


@pytest.fixture
def account_admin(admin) -> Membership:
    return MembershipFactory(
        account=admin.account,
        user__email="lee@alpha.example",
        user__full_name="Lee Lead",
        username="lee",
        permission=Membership.Permission.ACCOUNT_ADMIN,
    )
