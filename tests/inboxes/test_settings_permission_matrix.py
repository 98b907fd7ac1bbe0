"""Who may do what on the inbox settings pages: every settings action × every kind of member.

Members: super admin / account admin / agent × on the inbox's access list / off it × paid / free seat.

- Agents get 403 on every settings action (B8), whether or not they are on the access list.
- Super admins and account admins may open and change inbox settings whether or not they are on
  the inbox's access list: the access list governs acting on the inbox's conversations (reply,
  assign, close, change a ticket — B6), not configuring the inbox.
- Changing automatic assignment needs a paid seat as well (D1): a free-seat admin may open the
  Automation tab, read-only, and its save answers 403.

A refused request changes no row. An allowed save changes rows (at least its audit row); an
allowed read changes none. Adding an action is one line in ACTIONS; an action whose URL name is
not defined yet is collected as skipped, saying which part has not been built.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from django.urls import NoReverseMatch, get_resolver, reverse
from django_scopes import scopes_disabled

from channels_conn.models import Channel, FallbackAddress
from inboxes.models import Inbox
from inboxhub.models import Account, Membership
from tests.factories import MembershipFactory, TeamFactory, make_account
from tests.inboxhub.conftest import project_rows
from tickets.models import Pipeline

try:  # the access list (B5) belongs to the Inboxes page part
    from inboxes.models import InboxAccess
except ImportError:  # pragma: no cover - only while that part is being built
    InboxAccess = None


@dataclass
class World:
    """One account whose default inbox is restricted to a specific access list."""

    account: Account
    owner: Membership
    inbox: Inbox
    channel: Channel
    fallback_address: FallbackAddress
    pipeline: Pipeline
    extra: dict = field(default_factory=dict)

    def ids(self, names: tuple[str, ...]) -> list:
        values = {"inbox": self.inbox.pk, "channel": self.channel.pk}
        return [self.account.subdomain, *(values[name] for name in names)]


@dataclass(frozen=True)
class Action:
    name: str
    method: str
    url_name: str
    url_args: tuple[str, ...] = ()
    data: Callable[[World], dict] | None = None
    # A save that must change rows when it is allowed (its audit row at least).
    changes: bool = False
    # D1: the acting member needs a paid seat too.
    paid_seat: bool = False
    query: Callable[[World], dict] | None = None


def configuration(world: World) -> dict:
    return {
        "send_from": "on",
        "from_name_mode": "company",
        "company_name": "Alpha Help",
        "from_address_mode": "default",
        "custom_from_address": "",
        "signature_html": "<p>Thanks!</p>",
        "select_original_sender": "on",
    }


def automation(world: World) -> dict:
    return {"enabled": "on", "assign_to": "specific", "members": [world.owner.pk], "only_available": "on"}


def ticket_defaults(world: World) -> dict:
    with scopes_disabled():
        stage = world.pipeline.stages.order_by("position")[1]
    return {
        "create_tickets": "on",
        "pipeline": world.pipeline.pk,
        "stage": stage.pk,
        "priority": "high",
        "owner_mode": "conversation_owner",
    }


def rename(world: World) -> dict:
    return {"name": "Front desk"}


def channel_off(world: World) -> dict:
    return {"enabled": "false"}


def access_everyone(world: World) -> dict:
    return {"access": "everyone"}


def new_inbox(world: World) -> dict:
    return {"step": "3", "name": "Billing", "access": "everyone", "then": "later"}


def pipeline_query(world: World) -> dict:
    return {"pipeline": world.pipeline.pk}


def inbox_query(world: World) -> dict:
    return {"inbox": world.inbox.pk}


def address_query(world: World) -> dict:
    return {"custom_from_address": "help@matrix.example"}


INBOX, CHANNEL = ("inbox",), ("inbox", "channel")

# One line per action: name, method, URL name, URL ids, POST data; `changes` for a save, `paid_seat` for D1.
# fmt: off
ACTIONS = [
    # Inboxes page, Access tab, Create-inbox wizard (part 1)
    Action("open the inboxes page", "GET", "inbox_settings:index"),
    Action("open an inbox's settings", "GET", "inbox_settings:detail", INBOX),
    Action("pick the current inbox", "GET", "inbox_settings:switch", query=inbox_query),
    Action("rename an inbox", "POST", "inbox_settings:rename", INBOX, rename, changes=True),
    Action("turn a channel off", "POST", "inbox_settings:switch_channel", CHANNEL, channel_off, changes=True),
    Action("open the access tab", "GET", "inbox_settings:access", INBOX),
    Action("save the access list", "POST", "inbox_settings:access", INBOX, access_everyone, changes=True),
    Action("create an inbox", "POST", "inbox_settings:new", (), new_inbox, changes=True),
    # Fallback address editor, Configuration tab (part 2)
    Action("open the fallback address editor", "GET", "fallback:configuration", INBOX),
    Action("save the configuration", "POST", "fallback:configuration", INBOX, configuration, changes=True),
    # The from-address verification link is no settings action: it works for whoever holds it,
    # signed in or not (C4, tests/channels_conn/test_verification.py).
    Action("preview the from name and signature", "POST", "fallback:preview", INBOX, configuration),
    Action("show the HTML signature in the editor", "POST", "fallback:editor_html", INBOX, configuration),
    Action("check a from address's domain", "GET", "fallback:check_domain", INBOX, query=address_query),
    # Automation and Tickets tabs (part 3)
    Action("open the automation tab", "GET", "automation:edit", INBOX),
    Action("save automation", "POST", "automation:edit", INBOX, automation, changes=True, paid_seat=True),
    Action("open the tickets tab", "GET", "ticket_settings:edit", INBOX),
    Action("save the ticket defaults", "POST", "ticket_settings:edit", INBOX, ticket_defaults, changes=True),
    Action("load a pipeline's stages", "GET", "ticket_settings:stages", INBOX, query=pipeline_query),
]
# fmt: on

PARTS = {
    "inbox_settings": "the Inboxes page, Access tab and Create-inbox wizard (part 1)",
    "fallback": "the fallback address editor's Configuration tab (part 2)",
    "automation": "the Automation tab (part 3)",
    "ticket_settings": "the Tickets tab (part 3)",
}

PERMISSIONS = [
    Membership.Permission.SUPER_ADMIN,
    Membership.Permission.ACCOUNT_ADMIN,
    Membership.Permission.AGENT,
]
SEATS = [Membership.Seat.SERVICE_HUB, Membership.Seat.FREE]


def is_built(action: Action) -> bool:
    try:
        reverse(action.url_name, args=["x", *[1] * len(action.url_args)])
    except NoReverseMatch:
        return False
    return True


def action_params():
    for action in ACTIONS:
        marks = []
        if not is_built(action):
            part = PARTS[action.url_name.split(":")[0]]
            marks.append(pytest.mark.skip(reason=f"{part} not built yet: no URL named {action.url_name}"))
        yield pytest.param(action, id=action.name.replace(" ", "-"), marks=marks)


def member_params():
    for permission in PERMISSIONS:
        for listed in (True, False):
            for seat in SEATS:
                marks = []
                if listed and InboxAccess is None:
                    marks.append(pytest.mark.skip(reason="the access list (part 1) is not built yet"))
                label = (
                    f"{permission}-{'on' if listed else 'off'}-list-{'paid' if seat != 'free' else 'free'}"
                )
                yield pytest.param(permission, listed, seat, id=label, marks=marks)


def expected_status(action: Action, permission: str, seat: str) -> int | None:
    """403 when refused; None when allowed."""
    if permission == Membership.Permission.AGENT:
        return 403
    if action.paid_seat and seat == Membership.Seat.FREE:
        return 403
    return None


@pytest.fixture
def world(db) -> World:
    owner = make_account("matrix", company_name="Matrix", full_name="Olga Owner", email="olga@matrix.example")
    account = owner.account
    inbox = Inbox.objects.get(account=account, is_default=True)
    channel = Channel.objects.get(inbox=inbox, kind=Channel.Kind.FALLBACK_EMAIL)
    fallback_address = FallbackAddress.objects.get(channel=channel)
    # A custom from address waiting for its link, so "verify" has something to verify.
    fallback_address.custom_from_address = "help@matrix.example"
    fallback_address.custom_from_nonce = "a" * 32
    fallback_address.save(update_fields=["custom_from_address", "custom_from_nonce"])
    inbox.access = Inbox.Access.SPECIFIC
    inbox.save(update_fields=["access"])
    TeamFactory(account=account, name="Support").members.add(owner)
    pipeline = Pipeline.objects.get(account=account)
    return World(account, owner, inbox, channel, fallback_address, pipeline)


def member_of(world: World, permission: str, listed: bool, seat: str) -> Membership:
    member = MembershipFactory(
        account=world.account,
        permission=permission,
        seat=seat,
        user__email="actor@matrix.example",
        user__full_name="Ari Actor",
        username="actor",
    )
    if listed:
        with scopes_disabled():
            InboxAccess.objects.create(account=world.account, inbox=world.inbox, member=member)
    return member


def test_the_matrix_names_every_settings_url_of_the_three_parts():
    """A settings URL added later without a row here fails this test, so the matrix stays complete."""
    covered = {action.url_name for action in ACTIONS}
    missing = []
    for namespace in PARTS:
        resolver = get_resolver().namespace_dict.get(namespace)
        if resolver is None:
            continue
        _, sub = resolver
        for view_name in sub.reverse_dict:
            if isinstance(view_name, str) and f"{namespace}:{view_name}" not in covered:
                missing.append(f"{namespace}:{view_name}")
    assert sorted(missing) == [], "add a line to ACTIONS for each"


@pytest.mark.parametrize(("permission", "listed", "seat"), member_params())
@pytest.mark.parametrize("action", action_params())
def test_settings_action_permission(client, world, action, permission, listed, seat):
    member = member_of(world, permission, listed, seat)
    client.force_login(member.user)
    url = reverse(action.url_name, args=world.ids(action.url_args))
    if action.query:
        url += "?" + urlencode(action.query(world))
    data = action.data(world) if action.data else {}
    before = project_rows()

    response = client.post(url, data) if action.method == "POST" else client.get(url)

    refused = expected_status(action, permission, seat)
    if refused:
        assert response.status_code == refused, response.status_code
        assert project_rows() == before, "a refused request changed rows"
        return
    assert response.status_code in (200, 302), (response.status_code, response.text[:2000])
    if action.changes:
        assert project_rows() != before, "an allowed save changed nothing"
    elif action.method == "GET":
        assert project_rows() == before, "opening a page changed rows"


def test_a_free_seat_admin_opens_the_automation_tab_read_only(client, world):
    member = member_of(world, Membership.Permission.ACCOUNT_ADMIN, False, Membership.Seat.FREE)
    client.force_login(member.user)

    response = client.get(reverse("automation:edit", args=world.ids(("inbox",))))

    assert response.status_code == 200
    assert "Only a member with a paid seat can turn on or change automatic assignment." in response.text
