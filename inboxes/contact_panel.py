"""The contact beside a thread (H6): who wrote, their owner, their other conversations.

`contact_panel` builds the context of `inboxes/partials/contact_panel.html`
in a fixed number of queries, however many conversations the contact has:
the contact with its owner, its other addresses (2), the other conversations
in the inboxes the viewer may see (1), and for admins the owner picker's
members (1, when the form renders).
"""

from django.db.models import Prefetch

from inboxes.contact_forms import ContactOwnerForm
from inboxes.models import Contact, ContactAddress, Conversation
from inboxes.permissions import visible_inboxes
from inboxhub.models import Membership
from inboxhub.permissions import can

OTHER_CONVERSATIONS = 10


def other_conversations(
    contact: Contact, member: Membership, *, but: Conversation | None = None, limit: int = OTHER_CONVERSATIONS
) -> list[Conversation]:
    """The contact's conversations in inboxes the member may see, newest first, at most `limit` + 1.

    One more than asked tells the caller there are more (B6: hidden inboxes are never counted).
    """
    conversations = Conversation.objects.filter(
        account_id=contact.account_id, contact=contact, inbox__in=visible_inboxes(member)
    )
    if but is not None:
        conversations = conversations.exclude(pk=but.pk)
    return list(conversations.select_related("inbox").order_by("-last_message_at", "-pk")[: limit + 1])


def contact_panel(member: Membership, conversation: Conversation) -> dict:
    """The panel's context: the contact, the owner form for admins, the other conversations (H6, D6)."""
    contact = (
        Contact.objects.filter(account_id=conversation.account_id)
        .select_related("owner__user")
        .prefetch_related(Prefetch("addresses", queryset=ContactAddress.objects.order_by("created_at", "pk")))
        .get(pk=conversation.contact_id)
    )
    others = other_conversations(contact, member, but=conversation)
    owner_form = None
    if can(member, "manage_inboxes"):
        owner_form = ContactOwnerForm(initial={"owner": contact.owner_id}, account=member.account)
    return {
        "contact": contact,
        "owner_form": owner_form,
        "others": others[:OTHER_CONVERSATIONS],
        "more_others": len(others) > OTHER_CONVERSATIONS,
    }
