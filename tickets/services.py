"""State changes for pipelines and stages."""

from django.core.exceptions import ValidationError
from django.db import transaction

from inboxes.locking import save_inbox_settings
from inboxhub.audit import record_change
from inboxhub.models import Account, Membership
from inboxhub.permissions import require
from tickets.models import Pipeline, Stage, TicketDefaults

DEFAULT_STAGES = [("New", False), ("Waiting on contact", False), ("Waiting on us", False), ("Closed", True)]


@transaction.atomic
def create_default_pipeline(account: Account) -> Pipeline:
    """Create the "Support pipeline" with its four stages (A1)."""
    pipeline = Pipeline.objects.create(account=account, name="Support pipeline", is_default=True)
    Stage.objects.bulk_create(
        Stage(account=account, pipeline=pipeline, name=name, position=i, is_closed=closed)
        for i, (name, closed) in enumerate(DEFAULT_STAGES)
    )
    return pipeline


@transaction.atomic
def update_ticket_defaults(
    defaults: TicketDefaults,
    *,
    create_tickets: bool,
    pipeline: Pipeline | None,
    stage: Stage | None,
    priority: str,
    owner_mode: str,
    owner: Membership | None,
    by: Membership,
) -> TicketDefaults:
    """Choose whether incoming conversations become tickets, and their pipeline, stage, priority, owner (C11).

    `defaults` may be unsaved (an inbox whose tab was never saved): it is created here.
    """
    for obj in (defaults, pipeline, stage, owner):
        if obj is not None:
            assert obj.account_id == by.account_id, "member and object in different accounts"
    require(by, "manage_inboxes")
    if pipeline is None:
        raise ValidationError({"pipeline": "Choose the pipeline new tickets start in."})
    if stage is None:
        raise ValidationError({"stage": "Choose the stage new tickets start at."})
    if stage.pipeline_id != pipeline.pk:
        message = (
            f"“{stage.name}” is not a stage of the pipeline “{pipeline.name}”. Choose one of its stages."
        )
        raise ValidationError({"stage": message})
    if priority not in TicketDefaults.Priority.values:
        raise ValidationError({"priority": "Choose a priority."})
    if owner_mode not in TicketDefaults.OwnerMode.values:
        raise ValidationError({"owner_mode": "Choose who owns new tickets."})
    if owner_mode == TicketDefaults.OwnerMode.MEMBER and owner is None:
        raise ValidationError({"owner": "Choose the member who owns new tickets."})
    if owner_mode != TicketDefaults.OwnerMode.MEMBER:
        owner = None
    defaults = save_inbox_settings(
        TicketDefaults,
        account_id=defaults.account_id,
        inbox_id=defaults.inbox_id,
        create_tickets=create_tickets,
        pipeline=pipeline,
        stage=stage,
        priority=priority,
        owner_mode=owner_mode,
        owner=owner,
    )
    record_change(
        by,
        defaults,
        "ticket_defaults_updated",
        create_tickets=create_tickets,
        pipeline=pipeline.pk,
        stage=stage.pk,
        priority=priority,
        owner_mode=owner_mode,
        owner=owner.pk if owner else None,
    )
    return defaults
