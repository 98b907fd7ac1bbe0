"""`manage.py demo` seeds acme and globex, prints them with --json, and is safe to run again.

Most tests here seed without the week of mail (`--without-mail`): the accounts are what they are
about, and the mail commits to the spool outside the test's transaction. The mail itself is
tested in test_demo_week.py.
"""

import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django_scopes import scopes_disabled

from inboxes.models import Message
from inboxhub.models import Team


def run_demo(*options: str) -> dict:
    out = StringIO()
    call_command("demo", "--json", "--without-mail", *options, stdout=out)
    return json.loads(out.getvalue())


def account(data: dict, subdomain: str) -> dict:
    return next(a for a in data["accounts"] if a["subdomain"] == subdomain)


def address(local: str, subdomain: str) -> str:
    return f"{local}@{subdomain}.{settings.INBOUND_DOMAIN}"


def test_demo_json_lists_the_two_accounts_with_their_tiers(db):
    data = run_demo()

    assert [(a["subdomain"], a["tier"]) for a in data["accounts"]] == [
        ("acme", "professional"),
        ("globex", "free"),
    ]


def test_demo_acme_has_the_documented_users_seats_and_permissions(db):
    users = account(run_demo(), "acme")["users"]

    assert sorted((u["email"], u["permission"], u["seat"]) for u in users) == [
        ("ada@acme.example", "agent", "service_hub"),
        ("admin@acme.example", "super_admin", "service_hub"),
        ("ben@acme.example", "agent", "sales_hub"),
        ("fay@acme.example", "agent", "free"),
        ("lead@acme.example", "account_admin", "service_hub"),
    ]


def test_demo_acme_has_the_default_inbox_and_sales_with_their_fallback_addresses(db):
    inboxes = account(run_demo(), "acme")["inboxes"]

    assert inboxes == [
        {"name": "Inbox", "default": True, "fallback_address": address("support", "acme")},
        {"name": "Sales", "default": False, "fallback_address": address("sales", "acme")},
    ]


def test_demo_globex_has_its_super_admin_and_only_the_default_inbox(db):
    globex = account(run_demo(), "globex")

    assert globex["users"] == [
        {"email": "admin@globex.example", "permission": "super_admin", "seat": "service_hub"}
    ]
    assert globex["inboxes"] == [
        {"name": "Inbox", "default": True, "fallback_address": address("support", "globex")}
    ]


def test_demo_acme_has_team_support_with_ada_ben_and_fay(db):
    run_demo()

    with scopes_disabled():
        team = Team.objects.get(account__subdomain="acme")
        emails = sorted(team.members.values_list("user__email", flat=True))
    assert team.name == "Support"
    assert emails == ["ada@acme.example", "ben@acme.example", "fay@acme.example"]


def test_running_the_demo_twice_changes_nothing(db, snapshot):
    first = run_demo()
    before = snapshot()

    second = run_demo()

    assert second == first
    assert snapshot() == before


def test_running_the_demo_with_its_week_of_mail_twice_changes_nothing_and_sends_nothing(
    transactional_db, snapshot, mailoutbox
):
    call_command("demo", stdout=StringIO())
    before = snapshot()
    with scopes_disabled():
        assert Message.objects.count() > 80

    call_command("demo", stdout=StringIO())

    assert snapshot() == before
    assert mailoutbox == []


def test_without_json_the_demo_says_where_to_log_in(db):
    out = StringIO()

    call_command("demo", "--without-mail", stdout=out)

    assert out.getvalue() == "Demo accounts ready: acme, globex (password inboxhub-demo)\n"


@pytest.mark.parametrize(
    ("email", "landing"),
    [
        ("admin@acme.example", "/a/acme/inbox/"),
        ("fay@acme.example", "/a/acme/inbox/"),
        ("admin@globex.example", "/a/globex/inbox/"),
    ],
)
def test_the_demo_password_logs_in(db, email, landing):
    run_demo()
    client = Client()

    response = client.post("/login/", {"username": email, "password": "inboxhub-demo"}, follow=True)

    assert response.redirect_chain[-1] == (landing, 302)
    assert response.status_code == 200


def test_a_demo_member_of_acme_gets_404_on_globex(db):
    run_demo()
    client = Client()
    client.post("/login/", {"username": "ada@acme.example", "password": "inboxhub-demo"})

    assert client.get("/a/globex/inbox/").status_code == 404
