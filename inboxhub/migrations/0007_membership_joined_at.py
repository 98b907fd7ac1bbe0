"""Membership.joined_at (issue 16 point 2): members who ever had a usable password count as joined
since they were added; those still waiting for their invite link's password have not joined."""

from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import migrations, models
from django.db.models import F


def joined_so_far(apps, schema_editor):
    Membership = apps.get_model("inboxhub", "Membership")
    Membership.objects.exclude(user__password__startswith=UNUSABLE_PASSWORD_PREFIX).update(
        joined_at=F("created_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("inboxhub", "0006_notify_assignment_setting"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="joined_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(joined_so_far, migrations.RunPython.noop),
    ]
