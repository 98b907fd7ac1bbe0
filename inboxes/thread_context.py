"""What every rendering of a thread's controls needs: whether the member may act, each action's
refusal, and the newest activity (H4, B6, B7). One place, so the page and its htmx answers agree."""

from inboxes.activity import recent_activity
from inboxes.models import Conversation
from inboxes.permissions import can_act_in_inbox, conversation_refusals
from inboxhub.models import Membership


def thread_controls(member: Membership, conversation: Conversation, *, activity: bool = True) -> dict:
    context = {
        "can_act": can_act_in_inbox(member, conversation.inbox),
        # Each action's control enabled, or disabled with the reason.
        "refusals": conversation_refusals(member, conversation),
    }
    if activity:
        context["activity"] = recent_activity(conversation)
    return context
