"""Bounces of agents' replies: the reply a bounce returns is marked bounced on its thread (H3, RFC 3464).

The pipeline hands each parsed bounce (`ParsedMessage.delivery_report`) to
`record_delivery_report` before it would open a conversation. The reply is
looked up by the returned message's Message-ID among this inbox's outgoing
messages only (RELIABILITY advisory 13): a report naming another account's or
inbox's id matches nothing and is received as any machine's mail is.
"""

from django.db import transaction

from inboxes.activity import record_event
from inboxes.models import ConversationEvent, Inbox, Message
from inboxes.threads import normalise_message_id
from inboxhub.lib.mail.dsn import DeliveryReport

State = Message.DeliveryState

REASON_MAX_CHARS = 2000
DELAYED_NOTE = (
    "The recipient's mail server reported a delay ({reason}) and is still trying; "
    "if it gives up, this reply is marked bounced."
)
# What a report says happened to the reply; a report that says none of these is received as mail.
_SETTLED_ACTIONS = ("failed", "delayed", "delivered", "relayed", "expanded")


@transaction.atomic(savepoint=False)
def record_delivery_report(inbox: Inbox, report: DeliveryReport) -> Message | None:
    """Mark the reply a bounce returns bounced, with the reason, or note a delay (H3, RFC 3464).

    Returns the reply when the report is about one of this inbox's replies and
    says what happened to it: the report then needs no conversation of its
    own. None otherwise. Idempotent: a reply already bounced keeps its first
    reason.
    """
    reply = _returned_reply(inbox, report)
    if reply is None or not any(r.action in _SETTLED_ACTIONS for r in report.recipients):
        return None
    this_reply = Message.objects.filter(account_id=inbox.account_id, pk=reply.pk)
    if report.failed:
        reason = "; ".join(dict.fromkeys(r.reason for r in report.failed))[:REASON_MAX_CHARS]
        # Also over queued, sending or failed: whatever the smarthost said, the mail came back.
        if this_reply.exclude(delivery_state=State.BOUNCED).update(
            delivery_state=State.BOUNCED, delivery_error=reason
        ):
            record_event(
                reply.conversation, ConversationEvent.Kind.REPLY_BOUNCED, message=reply.pk, error=reason
            )
    elif report.delayed:
        reason = "; ".join(dict.fromkeys(r.reason for r in report.delayed))[:REASON_MAX_CHARS]
        this_reply.filter(delivery_state=State.SENT).update(delivery_error=DELAYED_NOTE.format(reason=reason))
    reply.refresh_from_db(fields=["delivery_state", "delivery_error"])
    return reply


def _returned_reply(inbox: Inbox, report: DeliveryReport) -> Message | None:
    ids = [normalise_message_id(message_id) for message_id in report.original_message_ids]
    if not ids:
        return None
    replies = {
        reply.message_id: reply
        for reply in Message.objects.filter(
            account_id=inbox.account_id,
            inbox=inbox,
            direction=Message.Direction.OUTGOING,
            message_id__in=ids,
        )
    }
    # The returned message's own id first: a report's In-Reply-To only when that names nothing of ours.
    return next((replies[message_id] for message_id in ids if message_id in replies), None)
