"""State changes for routing: automatic assignment of new conversations (D)."""

from inboxes.models import Conversation


def route_new_conversation(conversation: Conversation) -> None:
    """Route a conversation that mail just started (G3, D).

    Called once for every new conversation, inside its ingest transaction. Does
    nothing yet: the routing issue fills in automatic assignment (D2–D8) here,
    and C11's tickets for incoming conversations hang off this same hook.
    """
