"""Row locks that serialise changes to one inbox's settings."""

from inboxes.models import Inbox


def lock_inbox(account_id: int, inbox_id: int) -> None:
    """Hold the inbox's row until the transaction ends: saves of its settings go one at a time.

    Also what makes the first save of a per-inbox settings row (get_or_create)
    create one row, never two.
    """
    list(Inbox.objects.select_for_update().filter(account_id=account_id, pk=inbox_id).values_list("pk"))
