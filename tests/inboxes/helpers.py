"""Build parsed and raw messages and receive them, for the inboxes tests."""

import itertools
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django_scopes import scope, scopes_disabled

from channels_conn.models import FallbackAddress, InboundMessage
from channels_conn.recipients import accounts_of
from inboxes.models import Contact, Conversation, Inbox, Message
from inboxes.receiving import receive_message
from inboxhub.lib.mail.authentication import AuthVerdict, Method
from inboxhub.lib.mail.parsing import Address, ForwardedOriginal, ParsedAttachment, ParsedMessage

CAROL = Address(name="Carol Customer", email="carol@customer.example")
_ids = itertools.count(1)


def default_inbox(account) -> Inbox:
    with scope(account=account):
        return account.inboxes.select_related("account").get(is_default=True)


def fallback_address(inbox: Inbox) -> FallbackAddress:
    with scopes_disabled():
        return FallbackAddress.objects.get(channel__inbox=inbox)


def address_of(inbox: Inbox) -> str:
    return fallback_address(inbox).address


def parsed(**fields) -> ParsedMessage:
    """A ParsedMessage as the parser would return it: Carol writes to support."""
    n = next(_ids)
    values = {
        "message_id": f"m{n}@customer.example",
        "in_reply_to": [],
        "references": [],
        "subject": "Where is my order?",
        "sender": CAROL,
        "reply_to": [],
        "to": [Address(name="", email="support@alpha.inbox.localhost")],
        "cc": [],
        "date": datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        "text": "Hello, my order has not arrived.",
        "html": "",
    }
    values.update(fields)
    return ParsedMessage(**values)


def forward_of(original_sender: Address, *, by: str, cc=(), original_cc=(), client="gmail", **fields):
    """A message `by` forwarded, holding a mail from `original_sender`."""
    original = ForwardedOriginal(
        client=client,
        sender=original_sender,
        subject="Broken widget",
        date=datetime(2026, 11, 19, 8, 0, tzinfo=UTC),
        cc=list(original_cc),
        text="My widget is broken.",
        to=[Address(name="", email=by)],
        date_text="Thu, 19 Nov 2026 at 08:00",
    )
    return parsed(
        sender=Address(name="", email=by),
        subject="Fwd: Broken widget",
        cc=list(cc),
        text="FYI\n\n---------- Forwarded message ---------\nMy widget is broken.",
        text_without_forward_header="FYI\n\nMy widget is broken.",
        forwarded=original,
        **fields,
    )


def attachment(filename="invoice.pdf", payload=b"%PDF-1.4 fake", content_type="application/pdf"):
    return ParsedAttachment(filename=filename, content_type=content_type, payload=payload)


def verified_as(domain: str) -> AuthVerdict:
    """The verdict of a message with an aligned DKIM signature of `domain` (G8)."""
    return AuthVerdict(True, domain, Method.DKIM, f"dkim=pass ({domain}, aligned)")


def receive(
    inbox: Inbox,
    message: ParsedMessage,
    *,
    recipient: str | None = None,
    inbound=None,
    verdict: AuthVerdict | None = None,
) -> Message:
    with scope(account=inbox.account):
        return receive_message(
            inbox, message, recipient=recipient or address_of(inbox), inbound=inbound, verdict=verdict
        ).message


def spool(raw: bytes, *rcpt_tos: str, mail_from: str = "carol@customer.example", **fields) -> InboundMessage:
    """A spool row as the SMTP ingress writes it, keyed to its recipients' account when they name one."""
    accounts = set(accounts_of(list(rcpt_tos)).values())
    fields.setdefault("account_id", accounts.pop() if len(accounts) == 1 else None)
    return InboundMessage.objects.create(
        raw=raw, size=len(raw), mail_from=mail_from, rcpt_tos=list(rcpt_tos), peer_ip="192.0.2.10", **fields
    )


def raw_mail(
    *,
    to: str,
    sender: str = "Carol Customer <carol@customer.example>",
    subject: str = "Where is my order?",
    message_id: str | None = "<raw1@customer.example>",
    headers: str = "",
    body: str = "Hello, my order has not arrived.\n",
) -> bytes:
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", "Date: Fri, 20 Nov 2026 09:30:00 +0000"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    if headers:
        lines.extend(headers.strip("\n").splitlines())
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body]
    return "\r\n".join(lines).encode("utf-8")


def messages_in(account):
    with scope(account=account):
        return list(Message.objects.select_related("conversation__contact").order_by("created_at", "pk"))


def listed_conversation(
    inbox: Inbox,
    subject: str,
    *,
    email: str = "carol@customer.example",
    name: str = "Carol",
    text: str = "",
    at: datetime | None = None,
    sender: tuple[str, str] = ("", ""),
    **fields,
) -> Conversation:
    """A conversation as the lists and search show it, written directly: its contact (found or made by
    `email`), and one incoming message of `text` unless it is empty; `sender` is the message's
    (name, address). Five minutes old unless `at` says otherwise."""
    with scopes_disabled():
        contact, _ = Contact.objects.get_or_create(
            account=inbox.account, email=email, defaults={"name": name}
        )
        at = at or timezone.now() - timedelta(minutes=5)
        made = Conversation.objects.create(
            account=inbox.account,
            inbox=inbox,
            contact=contact,
            subject=subject,
            created_at=at,
            last_message_at=at,
            **fields,
        )
        if text:
            Message.objects.create(
                account=inbox.account,
                conversation=made,
                inbox=inbox,
                subject=subject,
                text=text,
                from_name=sender[0],
                from_email=sender[1],
                created_at=at,
                threaded_by=Message.ThreadedBy.NEW_CONVERSATION,
                attributed_by=Message.AttributedBy.FROM,
            )
        return made
