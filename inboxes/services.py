"""State changes for inboxes."""

from django.db import transaction

from inboxes.models import Inbox
from inboxhub.models import Account


@transaction.atomic
def create_inbox(account: Account, *, name: str, is_default: bool = False) -> Inbox:
    """Create an inbox with its fallback email channel and address (A1, E1)."""
    from channels_conn.services import create_fallback_channel

    inbox = Inbox.objects.create(account=account, name=name, is_default=is_default)
    create_fallback_channel(inbox)
    return inbox
