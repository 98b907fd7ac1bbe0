"""Reads for the Tickets tab (C11)."""

from inboxes.models import Inbox
from routing.models import AssignmentRule
from tickets.models import Pipeline, Stage, TicketDefaults


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
