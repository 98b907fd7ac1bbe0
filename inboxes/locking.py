"""Row locks that serialise changes to one inbox's settings."""

from django.utils import timezone

from inboxes.models import Inbox


def lock_inbox(account_id: int, inbox_id: int) -> None:
    """Hold the inbox's row until the transaction ends: saves of its settings go one at a time.

    Also what makes the first save of a per-inbox settings row (get_or_create)
    create one row, never two.
    """
    list(Inbox.objects.select_for_update().filter(account_id=account_id, pk=inbox_id).values_list("pk"))


def save_inbox_settings(model, *, account_id: int, inbox_id: int, **values):
    """Store an inbox's one row of `model` (its Automation or Tickets tab): created on the first save.

    Inside the caller's transaction, which holds the inbox's lock: two saves at
    once leave one whole row, never a mix of both.
    """
    lock_inbox(account_id, inbox_id)
    row, _ = model.objects.select_for_update().get_or_create(account_id=account_id, inbox_id=inbox_id)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_at = timezone.now()
    row.save(update_fields=[*values, "updated_at"])
    return row
