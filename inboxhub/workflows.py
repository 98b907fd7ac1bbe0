"""Changes to a conversation that reach across apps: closing and reopening it (H4, C11, D5).

Above inboxes, routing and tickets in the layers, as provisioning is: the one
place that knows what else a conversation's status moves.
"""

from django.db import transaction

from inboxes.models import Conversation
from inboxes.services import set_conversation_status
from inboxhub.models import Membership
from routing.backlog import assign_backlog
from routing.services import route_reopened_conversation
from tickets.services import reopen_ticket_for


@transaction.atomic
def close_conversation(conversation: Conversation, *, by: Membership) -> Conversation:
    """Close a conversation; its assignee has room again, so a waiting one may go out (H4, D7)."""
    set_conversation_status(conversation, Conversation.Status.CLOSED, by=by)
    transaction.on_commit(lambda: assign_backlog(conversation.account_id, conversation.inbox_id), robust=True)
    return conversation


@transaction.atomic
def reopen_conversation(conversation: Conversation, *, by: Membership) -> Conversation:
    """Reopen a conversation and its ticket; an assignee since away or gone makes way for the rule (H4)."""
    set_conversation_status(conversation, Conversation.Status.OPEN, by=by)
    reopen_ticket_for(conversation, by=by)
    route_reopened_conversation(conversation)
    return conversation
