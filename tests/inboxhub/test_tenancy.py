"""A2: every page under /a/<subdomain>/ answers 404 to other accounts and leaves their rows alone.

The walk reads the project's URL patterns, so a page added later is covered without
touching this file, as long as its URL kwargs name a kind of row this file knows.
"""

import re
from email.message import EmailMessage
from urllib.parse import quote

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver
from django_scopes import ScopeError, scope, scopes_disabled

from channels_conn.models import InboundMessage
from inboxes.services import create_inbox
from inboxhub.models import Membership
from inboxhub.services import add_member
from ingest.pipeline import process_inbound_message
from tests.factories import TeamFactory, UserFactory
from tests.inboxhub.conftest import PROJECT_APPS
from tickets.services import create_ticket

KWARG = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")

# URL kwarg -> "app_label.Model" whose row of account A fills it. Extend this when a page
# takes a new kind of id; a kwarg missing here is guessed from its name (ticket_id -> Ticket).
KWARG_MODELS = {
    "member_id": "inboxhub.Membership",
    "membership_id": "inboxhub.Membership",
    "team_id": "inboxhub.Team",
    "inbox_id": "inboxes.Inbox",
    "channel_id": "channels_conn.Channel",
    "fallback_address_id": "channels_conn.FallbackAddress",
    "address_id": "channels_conn.FallbackAddress",
    "inbound_id": "channels_conn.InboundMessage",
    "pipeline_id": "tickets.Pipeline",
    "stage_id": "tickets.Stage",
    "conversation_id": "inboxes.Conversation",
    "message_id": "inboxes.Message",
    "attachment_id": "inboxes.Attachment",
    "contact_id": "inboxes.Contact",
    "ticket_id": "tickets.Ticket",
}

# Fields a careless view might take from a POST; posting them proves nothing is saved anyway.
HOSTILE_POST = {
    "name": "Taken over",
    "full_name": "Mallory",
    "email": "mallory@evil.example",
    "seat": "free",
    "permission": "agent",
    "enabled": "false",
    "company_name": "Mallory Inc",
    "access": "everyone",
}


def walk(patterns, prefix=""):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


def kwarg_names(route: str) -> list[str]:
    return [m["name"] for m in KWARG.finditer(route)]


# The live poll answers a signed token, not a session: it names one account's change counter and
# shows nothing but its value (tests/inboxes/test_live.py holds its refusals).
TOKEN_ROUTES = {"a/<slug:subdomain>/inbox/live/"}
TENANT_ROUTES = [
    r for r in walk(get_resolver().url_patterns) if "subdomain" in kwarg_names(r) and r not in TOKEN_ROUTES
]


def model_for(kwarg: str):
    label = KWARG_MODELS.get(kwarg)
    if label:
        try:
            return apps.get_model(label)
        except LookupError:
            pass
    wanted = kwarg.removesuffix("_id").replace("_", "")
    for app_label in PROJECT_APPS:
        for model in apps.get_app_config(app_label).get_models():
            if model._meta.model_name == wanted:
                return model
    return None


def row_id_of(account, kwarg: str):
    """The id of a row of `account` for this kwarg, or None when none can be found."""
    model = model_for(kwarg)
    if model is None:
        return None
    with scopes_disabled():
        if model is InboundMessage:
            rows = InboundMessage.objects.filter(rcpt_tos__icontains=f"@{account.subdomain}.")
        elif any(f.name == "account" for f in model._meta.fields):
            rows = model._base_manager.filter(account=account)
        else:
            return None
        return rows.order_by("pk").values_list("pk", flat=True).first()


def fill(route: str, subdomain: str, ids: dict[str, object]) -> str:
    def value(match):
        name = match["name"]
        return quote(subdomain) if name == "subdomain" else str(ids.get(name, 1))

    return "/" + KWARG.sub(value, route)


def mail_with_an_attachment(to: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Cora Customer <cora@customer.example>"
    message["To"] = to
    message["Subject"] = "Invoice"
    message["Message-ID"] = "<invoice-1@customer.example>"
    message.set_content("Please find the invoice attached.")
    message.add_alternative("<p>Please find the <b>invoice</b> attached.</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename="invoice.pdf")
    return message.as_bytes()


@pytest.fixture
def account_a(admin, agent, settings, tmp_path):
    """Account A with a row of each kind a page may name: team, second inbox, mail, failed mail."""
    settings.MEDIA_ROOT = tmp_path / "media"
    account = admin.account
    with scope(account=account):
        TeamFactory(account=account, name="Support").members.add(agent)
        create_inbox(account, name="Sales")
        # Someone with a login is invited, not added (issue 16): an Invitation row.
        add_member(account, email=UserFactory().email, full_name="Ivy Invited", password=None, by=admin)
        address = account.fallback_addresses.order_by("pk").first().address
    # Created first, so it is the inbound row the walk names (the retry page wants a failed one).
    InboundMessage.objects.create(
        raw=b"not mail", size=8, rcpt_tos=[address], state=InboundMessage.State.FAILED, error="unreadable"
    )
    raw = mail_with_an_attachment(address)
    received = InboundMessage.objects.create(raw=raw, size=len(raw), rcpt_tos=[address])
    assert process_inbound_message(received.pk) == InboundMessage.State.PROCESSED
    with scope(account=account):
        create_ticket(account.conversations.get(), by=admin)
    return account


def ids_of(account) -> dict[str, object]:
    names = {name for route in TENANT_ROUTES for name in kwarg_names(route)} - {"subdomain"}
    return {name: pk for name in names if (pk := row_id_of(account, name)) is not None}


def assert_refused(response, method: str, other) -> None:
    """404, or 405 for a method the view never accepts; the same answer as for a missing account."""
    if response.status_code == 405:
        assert method not in response["Allow"], response["Allow"]
    else:
        assert response.status_code == 404, response.status_code
    assert other.status_code == response.status_code


def test_every_id_a_tenant_url_takes_maps_to_a_row_of_the_account(account_a):
    unknown = sorted(
        {name for route in TENANT_ROUTES for name in kwarg_names(route)}
        - {"subdomain"}
        - set(ids_of(account_a))
    )
    assert unknown == [], (
        f"URL kwargs {unknown} name no row of account A: extend KWARG_MODELS and the account_a "
        "fixture in tests/inboxhub/test_tenancy.py so the cross-account walk uses real ids"
    )


def test_the_walk_sees_the_tenant_pages():
    assert "a/<slug:subdomain>/settings/members/<int:member_id>/" in TENANT_ROUTES
    assert "a/<slug:subdomain>/inbox/" in TENANT_ROUTES


@pytest.mark.parametrize("route", TENANT_ROUTES)
def test_every_page_the_walk_visits_opens_for_the_accounts_own_super_admin(client, account_a, admin, route):
    # Proves the ids are real: the 404s below come from the account check, not a bad id.
    client.force_login(admin.user)

    response = client.get(fill(route, account_a.subdomain, ids_of(account_a)))

    assert response.status_code in (200, 302, 405), response.status_code


@pytest.mark.parametrize("route", TENANT_ROUTES)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_member_of_another_account_gets_404_on_every_page_and_nothing_changes(
    client, account_a, outsider, snapshot, route, htmx
):
    url = fill(route, account_a.subdomain, ids_of(account_a))
    missing = fill(route, "no-such-account", ids_of(account_a))
    headers = {"HX-Request": "true"} if htmx else {}
    client.force_login(outsider.user)
    before = snapshot()

    assert_refused(client.get(url, headers=headers), "GET", client.get(missing, headers=headers))
    assert_refused(
        client.post(url, HOSTILE_POST, headers=headers),
        "POST",
        client.post(missing, HOSTILE_POST, headers=headers),
    )
    assert snapshot() == before


@pytest.mark.parametrize("route", [r for r in TENANT_ROUTES if kwarg_names(r) != ["subdomain"]])
def test_another_accounts_ids_under_ones_own_subdomain_answer_404_and_nothing_changes(
    client, account_a, outsider, snapshot, route
):
    url = fill(route, outsider.account.subdomain, ids_of(account_a))
    client.force_login(outsider.user)
    before = snapshot()

    r_get = client.get(url)
    r_post = client.post(url, HOSTILE_POST)

    for response, method in ((r_get, "GET"), (r_post, "POST")):
        if response.status_code == 405:
            assert method not in response["Allow"]
        else:
            assert response.status_code == 404, (method, response.status_code)
    assert snapshot() == before


@pytest.mark.parametrize("route", TENANT_ROUTES)
def test_anonymous_visitors_are_sent_to_log_in_on_every_tenant_page(client, account_a, snapshot, route):
    url = fill(route, account_a.subdomain, ids_of(account_a))
    before = snapshot()

    for method in ("GET", "POST"):
        response = client.generic(method, url)
        if response.status_code == 405:
            assert method not in response["Allow"]
        else:
            assert response.status_code == 302, (method, response.status_code)
            assert response["Location"] == f"/login/?next={quote(url)}"
    assert snapshot() == before


def test_a_non_member_gets_the_same_404_for_an_existing_and_a_missing_account(client, admin, outsider):
    client.force_login(outsider.user)

    existing = client.get(f"/a/{admin.account.subdomain}/inbox/")
    missing = client.get("/a/no-such-account/inbox/")

    assert existing.status_code == missing.status_code == 404
    assert existing.content == missing.content


def test_a_member_sees_their_own_account(client, admin):
    client.force_login(admin.user)

    response = client.get(f"/a/{admin.account.subdomain}/inbox/")

    assert response.status_code == 200


def test_a_tenant_query_outside_an_account_scope_raises(admin):
    with pytest.raises(ScopeError):
        Membership.objects.count()


def test_a_tenant_query_inside_the_scope_sees_only_that_account(admin, outsider):
    with scope(account=admin.account):
        emails = list(Membership.objects.filter(account=admin.account).values_list("user__email", flat=True))
    assert emails == ["alice@alpha.example"]
