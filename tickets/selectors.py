"""Reads for the Tickets tab and the tickets page (C11, H4)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from inboxes.models import Inbox
from inboxes.permissions import can_act_in_inbox, visible_inboxes
from inboxhub.models import Membership
from routing.models import AssignmentRule
from tickets.models import Pipeline, Stage, Ticket, TicketDefaults

PAGE_SIZE = 50


def ticket_defaults_for(inbox: Inbox) -> TicketDefaults:
    """The inbox's ticket defaults, or unsaved ones until the tab is first saved.

    Unsaved defaults start in the default pipeline at its first stage, and the owner is the
    conversation's owner when automatic assignment is on, nobody otherwise (C11).
    """
    defaults = (
        TicketDefaults.objects.filter(account_id=inbox.account_id, inbox=inbox)
        .select_related("pipeline", "stage", "owner__user")
        .first()
    )
    if defaults is not None:
        return defaults
    pipeline = Pipeline.objects.filter(account_id=inbox.account_id).first()
    stage = pipeline.stages.first() if pipeline else None
    assigning = AssignmentRule.objects.filter(account_id=inbox.account_id, inbox=inbox, enabled=True).exists()
    owner_mode = TicketDefaults.OwnerMode.CONVERSATION_OWNER if assigning else TicketDefaults.OwnerMode.NOBODY
    return TicketDefaults(
        account_id=inbox.account_id, inbox=inbox, pipeline=pipeline, stage=stage, owner_mode=owner_mode
    )


def stages_of(pipeline: Pipeline | None):
    if pipeline is None:
        return Stage.objects.none()
    return Stage.objects.filter(account_id=pipeline.account_id, pipeline=pipeline).order_by("position")


def visible_tickets(member: Membership) -> QuerySet[Ticket]:
    """The account's tickets whose conversations are in inboxes the member can see (B6)."""
    return Ticket.objects.filter(
        account_id=member.account_id, conversation__inbox__in=visible_inboxes(member)
    )


def actable_inbox_ids(member: Membership, inboxes: list[Inbox]) -> set[int]:
    """The ids of those inboxes the member may act in (B6); a query only per restricted inbox."""
    return {inbox.pk for inbox in inboxes if can_act_in_inbox(member, inbox)}


@dataclass
class TicketPage:
    items: list[Ticket]
    next_cursor: str | None


def _parse_cursor(cursor: str | None) -> tuple[int, datetime, int] | None:
    """`<stage position>_<iso time>_<id>`; anything else reads as the first page."""
    position, _, rest = (cursor or "").partition("_")
    moment, _, pk = rest.rpartition("_")
    try:
        return int(position), datetime.fromisoformat(moment), int(pk)
    except ValueError:
        return None


def ticket_page(
    member: Membership,
    pipeline: Pipeline,
    *,
    owner: str | Membership = "anyone",
    priority: str = "",
    cursor: str | None = None,
    size: int = PAGE_SIZE,
) -> TicketPage:
    """A pipeline's tickets the member can see, stage by stage, newest first, keyset paged (H4).

    `owner`: "anyone", "me", "none" or a member.
    """
    tickets = (
        visible_tickets(member)
        .filter(pipeline=pipeline)
        .select_related("stage", "owner__user", "conversation__contact")
        .order_by("stage__position", "-created_at", "-pk")
    )
    if owner == "me":
        tickets = tickets.filter(owner=member)
    elif owner == "none":
        tickets = tickets.filter(owner__isnull=True)
    elif isinstance(owner, Membership):
        tickets = tickets.filter(owner=owner)
    if priority:
        tickets = tickets.filter(priority=priority)
    after = _parse_cursor(cursor)
    if after is not None:
        position, moment, pk = after
        tickets = tickets.filter(
            Q(stage__position__gt=position)
            | Q(stage__position=position, created_at__lt=moment)
            | Q(stage__position=position, created_at=moment, pk__lt=pk)
        )
    items = list(tickets[: size + 1])
    next_cursor = None
    if len(items) > size:
        items = items[:size]
        last = items[-1]
        next_cursor = f"{last.stage.position}_{last.created_at.isoformat()}_{last.pk}"
    return TicketPage(items, next_cursor)
