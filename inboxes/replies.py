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

import hashlib
import logging
import mimetypes
import re
import smtplib
from collections.abc import Sequence
from datetime import timedelta
from email.headerregistry import Address
from email.utils import make_msgid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import linebreaks
from django_scopes import scope, scopes_disabled

from channels_conn.models import FallbackAddress
from channels_conn.selectors import effective_from, render_signature, styles_as_data
from inboxes import live
from inboxes.activity import record_event
from inboxes.models import Attachment, Conversation, ConversationEvent, Message
from inboxes.permissions import ConversationAction, conversation_action_refusal, require_conversation_action
from inboxes.presence import check_crossed_replies, newest_reply_id
from inboxes.reply_tokens import reply_address
from inboxes.threads import normalise_message_id
from inboxhub.celery import app as celery_app
from inboxhub.lib.db import lock_row
from inboxhub.lib.html import sanitize_html
from inboxhub.lib.mail.parsing import html_to_text
from inboxhub.models import Membership
from inboxhub.outbound import CLAIM_GRACE_SECONDS, describe_error, is_temporary

logger = logging.getLogger(__name__)

State = Message.DeliveryState

DELIVER_TASK = "inboxes.tasks.deliver_reply_task"
SWEEP_TASK = "inboxes.tasks.sweep_replies_task"
SWEEP_BATCH = 500
# The task's retries wait at most 10 minutes (Celery's retry_backoff_max): a queued reply quiet for
# longer lost its task.
RETRY_QUIET_SECONDS = 11 * 60
FILENAME_MAX_LENGTH = 255
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
BODY_MAX_LENGTH = 50_000
# RFC 5322 §3.6.4 lets References be shortened: the first id and the newest ones keep clients threading.
MAX_REFERENCES = 20
# Ids the pipeline made up for mail that had none (inboxes.threads): no client knows them.
_MADE_UP_ID_DOMAINS = ("@no-message-id.invalid", "@long-message-id.invalid")

CHANNEL_OFF = "This inbox's email channel is turned off, so nothing can be sent from it."
SEND_FROM_OFF = "Sending from the InboxHub address is turned off for this inbox."
NO_ADDRESS = "This inbox has no email address to send from."
# Issue 16: a stranger's address signed up with cannot be made to send mail.
FOUNDER_UNVERIFIED = (
    "Nothing can be sent until the email address this account was signed up with is confirmed: "
    "open the link InboxHub mailed to it."
)
EMPTY_BODY = "Write a reply before sending."
# A reply's files together (REPLY_ATTACHMENTS_MAX_BYTES in settings); the message names the limit.
ATTACHMENTS_TOO_LARGE = "Attachments can be at most {limit} in total; these come to {size}."

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
    if fallback_address.account.unverified_founder_id is not None:
        return FOUNDER_UNVERIFIED
    if not fallback_address.channel.enabled:
        return CHANNEL_OFF
    if not fallback_address.send_from:
        return SEND_FROM_OFF
    return None


def composer_context(conversation: Conversation, member: Membership) -> dict:
    """What the composer shows: from name, from address and signature as the contact will see them,
    and why sending is off, if it is (H3, C1, C2, C4, C6, F2, B6, B7).

    The same code path as the settings preview (C7) and as `send_reply`.
    """
    fallback_address = fallback_address_of(conversation)
    refusal = conversation_action_refusal(member, conversation, ConversationAction.REPLY)
    refusal = refusal or sending_refusal(fallback_address)
    name = address = signature = ""
    if fallback_address is not None:
        name, address = effective_from(fallback_address, member)
        signature = styles_as_data(render_signature(fallback_address.signature_html, member))
    composer = {
        "from_name": name,
        "from_address": address,
        "signature": signature,
        "refusal": refusal or "",
        "attachments_limit": filesizeformat(settings.REPLY_ATTACHMENTS_MAX_BYTES),
        "note_refusal": conversation_action_refusal(member, conversation, ConversationAction.NOTE) or "",
        # The newest reply this composer has seen (issue 17): a newer one by someone else warns first.
        "seen_reply": newest_reply_id(conversation),
    }
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
def send_reply(
    conversation: Conversation,
    *,
    body: str,
    attachments: Sequence[UploadedFile] = (),
    seen_reply: int | None = None,
    confirmed_reply: int = 0,
    by: Membership,
) -> Message:
    """Store a reply to the conversation's contact and queue its delivery (H3, B6, B7, C1, C2, C4, C6, F2).

    `attachments` are stored like inbound ones and sent as MIME parts; together at most
    REPLY_ATTACHMENTS_MAX_BYTES. With `seen_reply` (the composer's newest reply seen), a newer
    reply by another member raises `presence.ReplyCrossed` unless `confirmed_reply` names it, and
    the same reply posted twice raises `presence.ReplyAlreadySent` (issue 17).
    """
    assert conversation.account_id == by.account_id, "member and conversation in different accounts"
    # The row lock: the assignee B7 reads is the one in force, and last_message_at only moves forward.
    conversation = lock_row(
        Conversation.objects.select_related("inbox", "contact", "assignee__user").filter(
            account_id=conversation.account_id, pk=conversation.pk
        )
    )
    require_conversation_action(by, conversation, ConversationAction.REPLY)
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise ValidationError({"body": EMPTY_BODY})
    if len(body) > BODY_MAX_LENGTH:
        raise ValidationError({"body": f"A reply is at most {BODY_MAX_LENGTH:,} characters."})
    _check_attachments(attachments)
    fallback_address = fallback_address_of(conversation)
    refusal = sending_refusal(fallback_address)
    if refusal:
        raise ValidationError(refusal)
    from_name, from_address = effective_from(fallback_address, by)
    text, html = _bodies(body, render_signature(fallback_address.signature_html, by))
    if seen_reply is not None:
        check_crossed_replies(
            conversation, seen_reply=seen_reply, confirmed_reply=confirmed_reply, text=text, by=by
        )
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
    for upload in attachments:
        _store_attachment(message, upload)
    conversation.last_message_at = now
    conversation.save(update_fields=["last_message_at"])
    record_event(conversation, ConversationEvent.Kind.REPLY_SENT, by=by, message=message.pk)
    transaction.on_commit(lambda: _enqueue(message), robust=True)
    return message


def _check_attachments(attachments: Sequence[UploadedFile]) -> None:
    total = sum(upload.size for upload in attachments)
    limit = settings.REPLY_ATTACHMENTS_MAX_BYTES
    if total > limit:
        message = ATTACHMENTS_TOO_LARGE.format(limit=filesizeformat(limit), size=filesizeformat(total))
        raise ValidationError({"attachments": message})


def _clean_filename(name: str) -> str:
    """The name the agent's browser sent, without a path or control characters; shown escaped."""
    name = (name or "").replace("\\", "/").rpartition("/")[2]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:FILENAME_MAX_LENGTH] or "attachment"


def _content_type(upload: UploadedFile, filename: str) -> str:
    """The browser's type when it is a well-formed one, else a guess from the name."""
    given = (upload.content_type or "").split(";")[0].strip().lower()
    if _CONTENT_TYPE.fullmatch(given):
        return given
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _store_attachment(message: Message, upload: UploadedFile) -> Attachment:
    """Store an uploaded file of a reply as inbound files are: under a generated key, with its hash."""
    filename = _clean_filename(upload.name)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    attachment = Attachment(
        account_id=message.account_id,
        message=message,
        filename=filename,
        content_type=_content_type(upload, filename),
        size=upload.size,
        sha256=digest.hexdigest(),
    )
    attachment.file.save("attachment", File(upload), save=False)
    attachment.save()
    return attachment


@transaction.atomic
def retry_reply(message: Message, *, by: Membership) -> bool:
    """Put a failed reply back in the queue (H3); False when it is not failed (any more)."""
    assert message.account_id == by.account_id, "member and message in different accounts"
    require_conversation_action(by, message.conversation, ConversationAction.REPLY)
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
            _fail(message, refusal)
            return State.FAILED
        try:
            email_of(message).send(fail_silently=False)
        except ValueError as exc:  # what was stored cannot be written as mail: trying again cannot help
            _fail(message, f"This reply could not be written as an email: {exc}")
            logger.warning("reply %s cannot be written as mail: %s", message.pk, exc)
            return State.FAILED
        except (smtplib.SMTPException, OSError) as exc:
            error = describe_error(exc)
            if is_temporary(exc) and not last_attempt:
                _finish(message, State.QUEUED, delivery_error=error)
                logger.info("reply %s deferred: %s", message.pk, error)
                raise
            _fail(message, error)
            logger.warning("reply %s failed: %s", message.pk, error)
            return State.FAILED
        _finish(message, State.SENT, delivery_error="", delivered_at=timezone.now())
        return State.SENT


def _on_our_sending_domain(address: str) -> bool:
    domain = address.rpartition("@")[2].lower()
    ours = (settings.SENDING_DOMAIN_PAID, settings.SENDING_DOMAIN_FREE)
    return any(domain.endswith(f".{sending.lower()}") for sending in ours)


def _one_line(name: str) -> str:
    """A name is one line in a header whatever was stored (B11): a line break never starts another header."""
    return " ".join(name.split())


def email_of(message: Message) -> EmailMultiAlternatives:
    """The mail of a stored reply, headers as stored: what was queued is what is sent."""
    sender = str(Address(display_name=_one_line(message.from_name), addr_spec=message.from_email))
    to = [str(Address(display_name=_one_line(r.get("name", "")), addr_spec=r["email"])) for r in message.to]
    headers = {"Message-ID": f"<{message.message_id}>", "Reply-To": message.reply_to}
    if message.in_reply_to:
        headers["In-Reply-To"] = f"<{message.in_reply_to}>"
    if message.references:
        headers["References"] = " ".join(f"<{i}>" for i in message.references.split())
    if _on_our_sending_domain(message.from_email) and message.reply_to:
        # Bounces and automatic answers go to the envelope sender (RFC 3464, 3834): to the reply
        # address, they come back into this conversation (a bounce marks this reply bounced).
        headers["From"] = sender
        envelope_sender = message.reply_to
    else:
        envelope_sender = sender  # a custom address: its own domain's SPF must cover us (C4)
    email = EmailMultiAlternatives(
        subject=message.subject, body=message.text, from_email=envelope_sender, to=to, headers=headers
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    for attachment in message.attachments.filter(account_id=message.account_id).order_by("created_at", "pk"):
        with attachment.file.open("rb") as file:
            email.attach(attachment.filename, file.read(), attachment.content_type or None)
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


def _finish(message: Message, state: str, **fields) -> int:
    # Conditional on this run's claim: a run that outlived it must not overwrite a newer outcome.
    finished = Message.objects.filter(
        account_id=message.account_id,
        pk=message.pk,
        delivery_state=State.SENDING,
        delivery_claimed_at=message.delivery_claimed_at,
    ).update(delivery_state=state, **fields)
    live.note_change(message.account_id, message.conversation_id)  # the thread shows sent or failed (H5)
    return finished


@transaction.atomic
def _fail(message: Message, error: str) -> None:
    """Mark the reply failed and say so in the conversation's activity, together."""
    if _finish(message, State.FAILED, delivery_error=error):
        record_event(
            message.conversation, ConversationEvent.Kind.REPLY_FAILED, message=message.pk, error=error
        )


# --- the sweep: replies whose task was lost (DESIGN "Durability") ---


def sweep_replies() -> int:
    """Hand queued replies whose task was lost back to the workers: Redis down at commit, a lost retry,
    a dead worker. The row is the copy of record; each run must claim it, so a reply goes out once.
    Returns how many were handed on.
    """
    now = timezone.now()
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + CLAIM_GRACE_SECONDS)
    lost = (
        Q(delivery_state=State.QUEUED, delivery_attempts=0, created_at__lt=now - timedelta(minutes=1))
        | Q(delivery_state=State.QUEUED, delivery_claimed_at__lt=now - timedelta(seconds=RETRY_QUIET_SECONDS))
        | Q(delivery_state=State.SENDING, delivery_claimed_at__lt=abandoned)
    )
    # A sweep across accounts: each reply is delivered later inside its own account's scope.
    with scopes_disabled():
        replies = list(
            Message.objects.filter(lost, direction=Message.Direction.OUTGOING).order_by("pk")[:SWEEP_BATCH]
        )
    for message in replies:
        _enqueue(message)
    return len(replies)
