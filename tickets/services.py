"""State changes for pipelines and stages."""

from django.db import transaction

from inboxhub.models import Account
from tickets.models import Pipeline, Stage

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
