"""The security and reliability tests of RELIABILITY-SECURITY.md (issue #14): one world, two accounts.

Account A ("alpha") has an inbox open to everyone and a restricted inbox, *Billing*, whose access
list names only Sam; each inbox holds a conversation with an HTML message, an attachment, a failed
reply and a ticket. Account B ("bravo") has the same rows. The route tables of the A1, A4, A5 and
A7 modules are filled from these rows, and enumerate the URLconf so a page added later is covered.
"""

import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import quote

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django_scopes import scope, scopes_disabled

from channels_conn.models import Channel, InboundMessage
from inboxes.models import Attachment, Contact, Conversation, Inbox, Message
from inboxes.replies import send_reply
from inboxhub.models import Account, Invitation, Membership
from ingest.pipeline import ingest_inbound
from tests.dnsserver import DNSServer
from tests.factories import UserFactory, make_account
from tests.inboxes.helpers import address_of, default_inbox, spool
from tests.inboxes.inbox_settings_helpers import make_inbox, make_member, make_team
from tickets.models import Pipeline, Stage, Ticket
from tickets.services import create_ticket


@pytest.fixture(autouse=True)
def quiet_dns(settings, tmp_path):
    """Ingested mail asks an empty DNS on loopback, never the system's (G8); attachments go to tmp."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TRUSTED_NETWORKS = []
    settings.TRUSTED_RELAYS = []
    settings.TRUSTED_AUTHSERV_ID = ""
    with DNSServer() as server:
        settings.DNS_NAMESERVERS = [server.address]
        yield server


def customer_mail(
    to: str, *, sender: str, subject: str, message_id: str, html: str = "", filename: str = "invoice.pdf"
) -> bytes:
    """A customer's mail with a text part, an HTML part and a PDF attachment."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}>"
    message.set_content("Please find the invoice attached.")
    message.add_alternative(html or "<p>Please find the <b>invoice</b> attached.</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 invoice", maintype="application", subtype="pdf", filename=filename)
    return message.as_bytes()


def receive_mail(inbox: Inbox, raw: bytes) -> Conversation:
    """Put a raw mail through the real pipeline, as the ingress and a worker would."""
    to = address_of(inbox)
    ingest_inbound(spool(raw, to))
    with scopes_disabled():
        return Conversation.objects.filter(inbox=inbox).order_by("-pk").first()


@dataclass
class Rows:
    """One inbox's rows, each of a kind a URL may name."""

    inbox: Inbox
    conversation: Conversation
    message: Message  # the customer's, with HTML
    reply: Message  # an outgoing reply whose delivery failed
    attachment: Attachment
    contact: Contact
    ticket: Ticket


@dataclass
class Side:
    """One account of the world: its members and the rows of its two inboxes."""

    account: Account
    admin: Membership
    open: Rows
    restricted: Rows
    members: dict[str, Membership] = field(default_factory=dict)
    failed_inbound: InboundMessage | None = None
    invitation: Invitation | None = None


def _rows(inbox: Inbox, *, by: Membership, n: int, sender: str) -> Rows:
    account = inbox.account
    conversation = receive_mail(
        inbox,
        customer_mail(
            address_of(inbox),
            sender=sender,
            subject=f"Invoice {n}",
            message_id=f"invoice-{n}@{account.subdomain}.customer.example",
        ),
    )
    with scope(account=account):
        conversation = Conversation.objects.select_related("inbox", "contact").get(pk=conversation.pk)
        message = conversation.messages.get(direction=Message.Direction.INCOMING)
        # Queued, never delivered (no commit here), then failed: the retry endpoint needs one.
        reply = send_reply(conversation, body="We are on it.", by=by)
        Message.objects.filter(pk=reply.pk).update(
            delivery_state=Message.DeliveryState.FAILED, delivery_error="550 5.1.1 User unknown"
        )
        ticket = create_ticket(conversation, by=by)
        return Rows(
            inbox=inbox,
            conversation=conversation,
            message=message,
            reply=Message.objects.get(pk=reply.pk),
            attachment=Attachment.objects.get(message=message),
            contact=conversation.contact,
            ticket=ticket,
        )


def build_side(subdomain: str, company: str, owner: str, n: int) -> Side:
    admin = make_account(
        subdomain,
        company_name=company,
        full_name=owner,
        email=f"{owner.split()[0].lower()}@{subdomain}.example",
    )
    account = admin.account
    bob = make_member(account, f"Bob {company}")
    sam = make_member(account, f"Sam {company}")
    fay = make_member(account, f"Fay {company}", seat=Membership.Seat.FREE)
    lee = make_member(account, f"Lee {company}", permission=Membership.Permission.ACCOUNT_ADMIN)
    make_team(account, f"Support {company}", bob, fay)
    restricted_inbox = make_inbox(admin, f"Billing {company}", members=[sam])
    side = Side(
        account=account,
        admin=admin,
        open=_rows(
            default_inbox(account), by=admin, n=n, sender=f"Carol <carol@{subdomain}-customer.example>"
        ),
        restricted=_rows(
            restricted_inbox, by=sam, n=n + 1, sender=f"Rita <rita@{subdomain}-customer.example>"
        ),
        members={"admin": admin, "bob": bob, "sam": sam, "fay": fay, "lee": lee},
    )
    side.failed_inbound = InboundMessage.objects.create(
        account=account,
        raw=b"not mail",
        size=8,
        rcpt_tos=[address_of(default_inbox(account))],
        state=InboundMessage.State.FAILED,
        error="unreadable",
    )
    # A pending invitation of someone with a login elsewhere (consent before joining, issue 16).
    invitee = UserFactory(email=f"invitee@{subdomain}-elsewhere.example", full_name=f"Ivy {company}")
    side.invitation = Invitation.objects.create(
        account=account, user=invitee, full_name=invitee.full_name, email=invitee.email, invited_by=admin
    )
    return side


@dataclass
class World:
    a: Side
    b: Side


@pytest.fixture
def world(db) -> World:
    return World(
        a=build_side("alpha", "Alpha", "Alice Admin", 1), b=build_side("bravo", "Bravo", "Charlie Boss", 10)
    )


# --- the URLconf, walked ---


def walk(patterns, prefix="", namespace=""):
    """(route, url name) of every pattern, namespaced like `reverse` wants it."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, route, inner)
        elif isinstance(entry, URLPattern):
            yield route, f"{namespace}{entry.name}" if entry.name else route


def all_routes() -> list[tuple[str, str]]:
    return list(walk(get_resolver().url_patterns))


# The live poll answers a signed token, not a session: it names one account's change counter and
# shows nothing but its value (tests/inboxes/test_live.py holds its refusals).
TOKEN_ROUTES = {"inboxes:live"}


def tenant_routes() -> list[tuple[str, str]]:
    return [
        (route, name)
        for route, name in all_routes()
        if "<slug:subdomain>" in route and name not in TOKEN_ROUTES
    ]


def ids_of(side: Side, rows: Rows) -> dict[str, object]:
    """URL kwarg -> the id of `rows` (or of the account) that fills it."""
    with scopes_disabled():
        pipeline = Pipeline.objects.filter(account=side.account).order_by("pk").first()
        stage = Stage.objects.filter(account=side.account).order_by("pk").first()
        channel = Channel.objects.filter(inbox=rows.inbox).first()
        team = side.account.teams.order_by("pk").first()
    return {
        "subdomain": side.account.subdomain,
        "inbox_id": rows.inbox.pk,
        "conversation_id": rows.conversation.pk,
        "message_id": rows.message.pk,
        "attachment_id": rows.attachment.pk,
        "contact_id": rows.contact.pk,
        "ticket_id": rows.ticket.pk,
        # 0 once a walk's control deleted the row (a team): later endpoints answer 404 for it.
        "channel_id": channel.pk if channel else 0,
        "member_id": side.members["bob"].pk,
        "team_id": team.pk if team else 0,
        "pipeline_id": pipeline.pk if pipeline else 0,
        "stage_id": stage.pk if stage else 0,
        "inbound_id": side.failed_inbound.pk,
        "invitation_id": side.invitation.pk,
    }


KWARG = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def kwarg_names(route: str) -> list[str]:
    return [m["name"] for m in KWARG.finditer(route)]


def fill(route: str, values: dict[str, object]) -> str:
    return "/" + KWARG.sub(lambda m: quote(str(values[m["name"]])), route)


def ids_for_route(name: str, side: Side, rows: Rows) -> dict[str, object]:
    """The kwargs of `name`'s URL for these rows: the retry endpoint names the failed reply."""
    ids = ids_of(side, rows)
    if name == "inboxes:retry_reply":
        ids["message_id"] = rows.reply.pk
    return ids


def post_data(name: str, side: Side, rows: Rows) -> dict[str, object]:
    """A POST each endpoint would act on for a member allowed to: what a crafted request sends."""
    with scopes_disabled():
        stage = Stage.objects.filter(pipeline=rows.ticket.pipeline).exclude(pk=rows.ticket.stage_id).first()
    data = {
        "inboxes:reply": {"body": "A crafted reply."},
        "conversations:assign": {"to": "me"},
        "tickets:move": {"stage": stage.pk},
        "contacts:owner": {"owner": side.members["sam"].pk},
    }.get(name)
    if data is not None:
        return data
    # An endpoint added later: the fields its siblings take, so a careless view has something to save.
    return {"body": "A crafted note.", "text": "A crafted note.", "note": "A crafted note.", "to": "me"}


def each(cases, check) -> None:
    """Run `check(*case)` for every case and fail once, naming every case that failed.

    One world serves every endpoint of a walk (building it per endpoint would cost minutes); a
    failure still names its endpoint, and one endpoint's failure hides no other's.
    """
    failures = []
    for case in cases:
        try:
            check(*case)
        except AssertionError as exc:
            failures.append(f"{case}: {exc}")
    assert failures == [], "\n".join(failures)
