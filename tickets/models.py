from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_scopes import ScopedManager

from inboxhub.models import Account


class Pipeline(models.Model):
    """A sequence of stages a support ticket moves through."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [models.UniqueConstraint("account", Lower("name"), name="pipeline_name_unique")]
        ordering = ["-is_default", "name"]

    def __str__(self) -> str:
        return self.name


class Stage(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="stages")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField()
    is_closed = models.BooleanField(default=False)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "pipeline", "position"], name="stage_position_unique")
        ]
        ordering = ["pipeline", "position"]

    def __str__(self) -> str:
        return self.name
