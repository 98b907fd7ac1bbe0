"""Agents' replies from the thread: stored queued, delivered by a worker through the smarthost (H3).

`send_reply` stores the reply as an outgoing Message with everything the mail
will carry (from per C2/C4, the C6 signature filled with the agent's name,
Message-ID, In-Reply-To, References, a Reply-To with the conversation's reply
token) and, once the transaction commits, hands its id to Celery under
DELIVER_TASK (registered by `inboxes.tasks`). `deliver_reply` claims the row
by a conditional update and sends it through Django's email backend
(`EMAIL_HOST`/`EMAIL_PORT`), as `inboxhub.outbound` does for the app's own
mail: a connection failure or a 4xx answer goes back to the queue and to the
task to be tried again; a 5xx answer, or the last attempt, leaves it failed
with the server's reason, for the agent to read and retry.
"""

import logging
import smtplib
from datetime import timedelta
from email.headerregistry import Address
from email.utils import make_msgid

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.html import linebreaks
from django_scopes import scope

from channels_conn.models import FallbackAddress
from channels_conn.selectors import effective_from, render_signature, styles_as_data
from inboxes.models import Conversation, Message
from inboxes.permissions import require_inbox_action
from inboxes.reply_tokens import reply_address
from inboxes.threads import normalise_message_id
from inboxhub.celery import app as celery_app
from inboxhub.lib.html import sanitize_html
from inboxhub.lib.mail.parsing import html_to_text
from inboxhub.models import Membership
from inboxhub.outbound import CLAIM_GRACE_SECONDS, describe_error, is_temporary

logger = logging.getLogger(__name__)

State = Message.DeliveryState

DELIVER_TASK = "inboxes.tasks.deliver_reply_task"
BODY_MAX_LENGTH = 50_000
# RFC 5322 §3.6.4 lets References be shortened: the first id and the newest ones keep clients threading.
MAX_REFERENCES = 20
# Ids the pipeline made up for mail that had none (inboxes.threads): no client knows them.
_MADE_UP_ID_DOMAINS = ("@no-message-id.invalid", "@long-message-id.invalid")

CHANNEL_OFF = "This inbox's email channel is turned off, so nothing can be sent from it."
SEND_FROM_OFF = "Sending from the InboxHub address is turned off for this inbox."
NO_ADDRESS = "This inbox has no email address to send from."
EMPTY_BODY = "Write a reply before sending."
FREE_SEAT_ASSIGNED = (
    "With a free seat you can reply only to conversations that are unassigned or assigned to you; "
    "this one is assigned to {assignee}."
)


# --- who may send, and what the composer shows (B6, B7, C1, F2) ---


def fallback_address_of(conversation: Conversation) -> FallbackAddress | None:
    """The inbox's fallback address, with its channel and account; replies are sent from it."""
    return (
        FallbackAddress.objects.filter(
            account_id=conversation.account_id, channel__inbox_id=conversation.inbox_id
        )
        .select_related("channel", "account")
        .first()
    )


def sending_refusal(fallback_address: FallbackAddress | None) -> str | None:
    """Why nothing can be sent from this address (F2, C1), or None when mail can go out."""
    if fallback_address is None:
        return NO_ADDRESS
    if not fallback_address.channel.enabled:
        return CHANNEL_OFF
    if not fallback_address.send_from:
        return SEND_FROM_OFF
    return None


def free_seat_refusal(conversation: Conversation, member: Membership) -> str | None:
    """B7: a free seat answers only conversations nobody else is assigned to."""
    if member.has_paid_seat or conversation.assignee_id in (None, member.pk):
        return None
    assignee = conversation.assignee
    return FREE_SEAT_ASSIGNED.format(assignee=assignee.user.full_name or assignee.user.email)


def require_reply_permission(conversation: Conversation, member: Membership) -> None:
    """Raise PermissionDenied with the reason unless the member may reply here (B6, B7)."""
    require_inbox_action(member, conversation.inbox)
    refusal = free_seat_refusal(conversation, member)
    if refusal:
        raise PermissionDenied(refusal)


def composer_context(conversation: Conversation, member: Membership) -> dict:
    """What the composer shows: from name, from address and signature as the contact will see them,
    and why sending is off, if it is (H3, C1, C2, C4, C6, F2, B6, B7).

    The same code path as the settings preview (C7) and as `send_reply`.
    """
    fallback_address = fallback_address_of(conversation)
    try:
        require_reply_permission(conversation, member)
    except PermissionDenied as exc:
        refusal = str(exc)
    else:
        refusal = sending_refusal(fallback_address)
    name = address = signature = ""
    if fallback_address is not None:
        name, address = effective_from(fallback_address, member)
        signature = styles_as_data(render_signature(fallback_address.signature_html, member))
    composer = {"from_name": name, "from_address": address, "signature": signature, "refusal": refusal or ""}
    return {"composer": composer}


# --- sending (H3) ---


def reply_subject(subject: str) -> str:
    subject = " ".join((subject or "").split())
    if subject.lower().startswith("re:"):
        return subject
    return f"Re: {subject or '(no subject)'}"


def _threading_ids(conversation: Conversation) -> tuple[str, list[str]]:
    """In-Reply-To (the contact's last message) and References (the thread's ids, oldest first)."""
    ids = [
        (message_id, direction)
        for message_id, direction in conversation.messages.filter(account_id=conversation.account_id)
        .exclude(message_id="")
        .order_by("created_at", "pk")
        .values_list("message_id", "direction")
        if not message_id.endswith(_MADE_UP_ID_DOMAINS)
    ]
    incoming = [message_id for message_id, direction in ids if direction == Message.Direction.INCOMING]
    in_reply_to = incoming[-1] if incoming else ""
    references = list(dict.fromkeys(message_id for message_id, _ in ids))
    if len(references) > MAX_REFERENCES:
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]
    return in_reply_to, references


def _bodies(body: str, signature_html: str) -> tuple[str, str]:
    """The text and HTML of a reply: the agent's words, then the filled signature (C6)."""
    if not signature_html:
        return body, ""
    text = f"{body}\n\n-- \n{html_to_text(signature_html)}"
    html = sanitize_html(
        f'{linebreaks(body, autoescape=True)}<div class="signature">{signature_html}</div>'
    ).html
    return text, html


@transaction.atomic
def send_reply(conversation: Conversation, *, body: str, by: Membership) -> Message:
    """Store a reply to the conversation's contact and queue its delivery (H3, B6, B7, C1, C2, C4, C6, F2)."""
    assert conversation.account_id == by.account_id, "member and conversation in different accounts"
    # The row lock: the assignee B7 reads is the one in force, and last_message_at only moves forward.
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("inbox", "contact", "assignee__user")
        .get(account_id=conversation.account_id, pk=conversation.pk)
    )
    require_reply_permission(conversation, by)
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise ValidationError({"body": EMPTY_BODY})
    if len(body) > BODY_MAX_LENGTH:
        raise ValidationError({"body": f"A reply is at most {BODY_MAX_LENGTH:,} characters."})
    fallback_address = fallback_address_of(conversation)
    refusal = sending_refusal(fallback_address)
    if refusal:
        raise ValidationError(refusal)
    from_name, from_address = effective_from(fallback_address, by)
    text, html = _bodies(body, render_signature(fallback_address.signature_html, by))
    in_reply_to, references = _threading_ids(conversation)
    now = timezone.now()
    contact = conversation.contact
    message = Message.objects.create(
        account_id=conversation.account_id,
        conversation=conversation,
        inbox_id=conversation.inbox_id,
        direction=Message.Direction.OUTGOING,
        message_id=normalise_message_id(make_msgid(domain=from_address.rpartition("@")[2])),
        in_reply_to=in_reply_to,
        references=" ".join(references),
        reply_to=reply_address(conversation, fallback_address.address),
        from_name=from_name,
        from_email=from_address,
        to=[{"name": contact.name, "email": contact.email}],
        subject=reply_subject(conversation.subject),
        text=text,
        html=html,
        created_at=now,
        sent_by=by,
        delivery_state=State.QUEUED,
    )
    conversation.last_message_at = now
    conversation.save(update_fields=["last_message_at"])
    transaction.on_commit(lambda: _enqueue(message), robust=True)
    return message


@transaction.atomic
def retry_reply(message: Message, *, by: Membership) -> bool:
    """Put a failed reply back in the queue (H3); False when it is not failed (any more)."""
    assert message.account_id == by.account_id, "member and message in different accounts"
    require_reply_permission(message.conversation, by)
    refusal = sending_refusal(fallback_address_of(message.conversation))
    if refusal:
        raise ValidationError(refusal)
    queued = Message.objects.filter(
        account_id=message.account_id, pk=message.pk, delivery_state=State.FAILED
    ).update(delivery_state=State.QUEUED, delivery_error="")
    if queued:
        transaction.on_commit(lambda: _enqueue(message), robust=True)
    return queued == 1


def _enqueue(message: Message) -> None:
    celery_app.signature(DELIVER_TASK, args=(message.pk, message.account_id)).apply_async()


# --- delivery, in a worker ---


def deliver_reply(message_pk: int, *, account_id: int, last_attempt: bool = True) -> str:
    """Send one queued reply and record how it went; a no-op when another run has it or it is done.

    Raises the connection's or server's error when it is temporary and
    `last_attempt` is false, after putting the reply back in the queue: the
    task tries again later.
    """
    with scope(account=account_id):
        if not _claim(message_pk, account_id):
            return "skipped"
        message = Message.objects.select_related("conversation").get(account_id=account_id, pk=message_pk)
        # F2, C1 at send time too: a channel turned off after the reply was queued sends nothing.
        refusal = sending_refusal(fallback_address_of(message.conversation))
        if refusal:
            _finish(message, State.FAILED, delivery_error=refusal)
            return State.FAILED
        try:
            email_of(message).send(fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            error = describe_error(exc)
            if is_temporary(exc) and not last_attempt:
                _finish(message, State.QUEUED, delivery_error=error)
                logger.info("reply %s deferred: %s", message.pk, error)
                raise
            _finish(message, State.FAILED, delivery_error=error)
            logger.warning("reply %s failed: %s", message.pk, error)
            return State.FAILED
        _finish(message, State.SENT, delivery_error="", delivered_at=timezone.now())
        return State.SENT


def email_of(message: Message) -> EmailMultiAlternatives:
    """The mail of a stored reply, headers as stored: what was queued is what is sent."""
    sender = str(Address(display_name=message.from_name, addr_spec=message.from_email))
    to = [str(Address(display_name=r.get("name", ""), addr_spec=r["email"])) for r in message.to]
    headers = {"Message-ID": f"<{message.message_id}>", "Reply-To": message.reply_to}
    if message.in_reply_to:
        headers["In-Reply-To"] = f"<{message.in_reply_to}>"
    if message.references:
        headers["References"] = " ".join(f"<{i}>" for i in message.references.split())
    email = EmailMultiAlternatives(
        subject=message.subject, body=message.text, from_email=sender, to=to, headers=headers
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    return email


def _claim(message_pk: int, account_id: int) -> bool:
    """Take the reply for this run: queued, or left sending by a worker that died past its time limit."""
    now = timezone.now()
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS)
    claimable = Q(delivery_state=State.QUEUED) | Q(
        delivery_state=State.SENDING, delivery_claimed_at__lt=abandoned
    )
    claimed = Message.objects.filter(claimable, account_id=account_id, pk=message_pk).update(
        delivery_state=State.SENDING, delivery_claimed_at=now, delivery_attempts=F("delivery_attempts") + 1
    )
    return claimed == 1


def _finish(message: Message, state: str, **fields) -> None:
    # Conditional on this run's claim: a run that outlived it must not overwrite a newer outcome.
    Message.objects.filter(
        account_id=message.account_id,
        pk=message.pk,
        delivery_state=State.SENDING,
        delivery_claimed_at=message.delivery_claimed_at,
    ).update(delivery_state=state, **fields)
