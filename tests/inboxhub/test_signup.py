"""A1: the sign-up page and `manage.py createaccount` create a whole account, or nothing."""

from html import escape

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django_scopes import scopes_disabled

from inboxes.models import Inbox
from inboxhub.models import Account, AuditEntry, Membership, User

GOOD = {
    "company_name": "Delta Logistics",
    "subdomain": "delta",
    "full_name": "Dana Delta",
    "email": "dana@delta.example",
    "password": "plum-orbit-canyon-42",
}


def counts() -> tuple[int, int, int, int]:
    with scopes_disabled():
        return (
            Account.objects.count(),
            User.objects.count(),
            Membership.objects.count(),
            Inbox.objects.count(),
        )


def shows(response, text: str) -> bool:
    return escape(text) in response.text


def test_signing_up_creates_the_account_with_its_super_admin(client, db):
    client.post("/signup/", GOOD)

    account = Account.objects.get(subdomain="delta")
    with scopes_disabled():
        owner = account.memberships.select_related("user").get()
    assert account.company_name == "Delta Logistics"
    assert account.tier == Account.Tier.FREE
    assert owner.user.email == "dana@delta.example"
    assert owner.user.full_name == "Dana Delta"
    assert owner.permission == Membership.Permission.SUPER_ADMIN
    assert owner.user.check_password("plum-orbit-canyon-42")


def test_signing_up_creates_the_default_inbox_with_its_fallback_address(client, db):
    client.post("/signup/", GOOD)

    with scopes_disabled():
        inbox = Inbox.objects.get(account__subdomain="delta")
        channel = inbox.channels.get()
    assert inbox.is_default
    assert channel.kind == "fallback_email"
    assert channel.enabled
    assert channel.fallback_address.address == f"support@delta.{settings.INBOUND_DOMAIN}"


def test_signing_up_creates_the_support_pipeline_with_its_four_stages(client, db):
    client.post("/signup/", GOOD)

    with scopes_disabled():
        pipeline = Account.objects.get(subdomain="delta").pipelines.get()
        stages = list(pipeline.stages.order_by("position").values_list("name", flat=True))
    assert pipeline.name == "Support pipeline"
    assert stages == ["New", "Waiting on contact", "Waiting on us", "Closed"]


def test_signing_up_records_the_account_creation(client, db):
    client.post("/signup/", GOOD)

    with scopes_disabled():
        entry = AuditEntry.objects.get(account__subdomain="delta")
    assert entry.action == "account_created"
    assert entry.actor.user.email == "dana@delta.example"


def test_after_signing_up_one_is_asked_to_confirm_the_email_address(client, db):
    response = client.post("/signup/", GOOD, follow=True)

    assert response.redirect_chain == [("/signup/sent/", 302)]
    assert "<h1>Check your email</h1>" in response.text
    assert not response.context["user"].is_authenticated


def test_an_uppercase_subdomain_is_stored_in_lowercase(client, db):
    client.post("/signup/", {**GOOD, "subdomain": "Delta-Co"})

    assert Account.objects.filter(subdomain="delta-co").exists()


def test_a_taken_subdomain_is_refused_and_nothing_is_created(client, admin):
    before = counts()

    response = client.post("/signup/", {**GOOD, "subdomain": admin.account.subdomain})

    assert response.status_code == 200
    assert shows(response, "This subdomain is already taken.")
    assert counts() == before


def test_a_taken_subdomain_in_other_case_is_refused(client, admin):
    before = counts()

    response = client.post("/signup/", {**GOOD, "subdomain": admin.account.subdomain.upper()})

    assert shows(response, "This subdomain is already taken.")
    assert counts() == before


SUBDOMAIN_RULE = "Use 3 to 40 lowercase letters, digits or hyphens, not starting or ending with a hyphen."


@pytest.mark.parametrize(
    ("subdomain", "message"),
    [
        ("ab", SUBDOMAIN_RULE),
        ("a" * 41, "Ensure this value has at most 40 characters (it has 41)."),
        ("-delta", SUBDOMAIN_RULE),
        ("delta-", SUBDOMAIN_RULE),
        ("del_ta", SUBDOMAIN_RULE),
        ("del.ta", SUBDOMAIN_RULE),
        ("délta", SUBDOMAIN_RULE),
        ("admin", "This subdomain is reserved. Please choose another."),
        ("www", "This subdomain is reserved. Please choose another."),
        ("WWW", "This subdomain is reserved. Please choose another."),
    ],
)
def test_an_invalid_subdomain_is_refused_with_the_rule_and_nothing_is_created(client, db, subdomain, message):
    before = counts()

    response = client.post("/signup/", {**GOOD, "subdomain": subdomain})

    assert response.status_code == 200
    assert shows(response, message)
    assert counts() == before


def test_an_email_already_in_use_creates_nothing_whatever_its_case(client, admin):
    before = counts()

    response = client.post("/signup/", {**GOOD, "email": "ALICE@Alpha.Example"})

    # The same answer as for a new email (tests/inboxhub/test_signup_hygiene.py).
    assert response["Location"] == "/signup/sent/"
    assert counts() == before


def test_a_weak_password_is_refused_with_the_reasons_and_nothing_is_created(client, db):
    before = counts()

    response = client.post("/signup/", {**GOOD, "password": "password"})

    assert shows(response, "This password is too short. It must contain at least 10 characters.")
    assert shows(response, "This password is too common.")
    assert counts() == before


def test_a_password_like_the_email_is_refused(client, db):
    response = client.post(
        "/signup/", {**GOOD, "email": "zanzibarquartz@delta.example", "password": "zanzibarquartz1"}
    )

    assert shows(response, "The password is too similar to the email.")
    assert counts() == (0, 0, 0, 0)


def test_a_form_with_errors_keeps_what_was_typed_but_not_the_password(client, db):
    response = client.post("/signup/", {**GOOD, "subdomain": "ab"})

    assert 'value="Delta Logistics"' in response.text
    assert "plum-orbit-canyon-42" not in response.text


def test_createaccount_creates_the_same_account(db):
    call_command(
        "createaccount",
        subdomain="echo",
        company="Echo",
        email="Erin@Echo.example",
        name="Erin Echo",
        password="plum-orbit-canyon-42",
        tier="professional",
        stdout=None,
    )

    account = Account.objects.get(subdomain="echo")
    with scopes_disabled():
        owner = account.memberships.select_related("user").get()
        inbox = account.inboxes.get()
        address = inbox.channels.get().fallback_address.address
        stages = account.pipelines.get().stages.count()
    assert account.tier == "professional"
    assert owner.user.email == "erin@echo.example"
    assert owner.permission == "super_admin"
    assert inbox.is_default
    assert address == f"support@echo.{settings.INBOUND_DOMAIN}"
    assert stages == 4


def test_createaccount_refuses_a_taken_subdomain_with_a_clear_error(admin):
    before = counts()

    with pytest.raises(CommandError, match=r"^This subdomain is already taken\.$"):
        call_command(
            "createaccount",
            subdomain="alpha",
            company="Other",
            email="other@other.example",
            name="Other Person",
            password="plum-orbit-canyon-42",
        )
    assert counts() == before


def test_createaccount_refuses_a_weak_password(db):
    with pytest.raises(CommandError, match="This password is too common."):
        call_command(
            "createaccount",
            subdomain="foxtrot",
            company="Foxtrot",
            email="f@foxtrot.example",
            name="Fox Trot",
            password="password123",
        )
    assert counts() == (0, 0, 0, 0)


# --- A person who is signed in creates another account -------------------------------


def test_a_signed_in_person_is_asked_only_for_the_company_and_subdomain(client, admin):
    client.force_login(admin.user)

    response = client.get("/signup/")

    assert "<h1>Create another account</h1>" in response.text
    assert 'name="subdomain"' in response.text
    assert 'name="password"' not in response.text
    assert 'name="email"' not in response.text


def test_a_signed_in_person_creates_another_account_and_stays_themselves(client, admin):
    client.force_login(admin.user)
    users = User.objects.count()

    response = client.post("/signup/", {"company_name": "Delta", "subdomain": "delta"}, follow=True)

    assert response.redirect_chain == [("/a/delta/inbox/", 302)]
    assert response.context["user"].email == "alice@alpha.example"
    assert User.objects.count() == users
    with scopes_disabled():
        owner = Membership.objects.get(account__subdomain="delta")
        assert Inbox.objects.filter(account__subdomain="delta", is_default=True).exists()
    assert (owner.user_id, owner.permission) == (admin.user_id, "super_admin")
    assert client.get("/a/alpha/inbox/").status_code == 200


def test_a_signed_in_person_cannot_take_a_used_subdomain(client, admin, outsider):
    client.force_login(admin.user)
    before = counts()

    response = client.post("/signup/", {"company_name": "Bravo 2", "subdomain": "bravo"})

    assert shows(response, "This subdomain is already taken.")
    assert counts() == before
