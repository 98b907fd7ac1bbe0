from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_scopes import ScopedManager

from inboxhub.models import Account


class Inbox(models.Model):
    """A container of conversations with its own access list and channels."""

    class Access(models.TextChoices):
        EVERYONE = "everyone", "Available to everyone"
        SPECIFIC = "specific", "Specific users and teams"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="inboxes")
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)
    access = models.CharField(max_length=20, choices=Access.choices, default=Access.EVERYONE)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ScopedManager(account="account")

    class Meta:
        constraints = [
            models.UniqueConstraint("account", Lower("name"), name="inbox_name_unique"),
            models.UniqueConstraint(
                fields=["account"], condition=models.Q(is_default=True), name="inbox_one_default"
            ),
        ]
        ordering = ["-is_default", "name"]
        verbose_name_plural = "inboxes"

    def __str__(self) -> str:
        return self.name
