import django.db.models.deletion
from django.db import migrations, models


def key_spool_rows(apps, schema_editor):
    """Give each spooled row the account its recipients name; a row naming several becomes one per account."""
    InboundMessage = apps.get_model("channels_conn", "InboundMessage")
    FallbackAddress = apps.get_model("channels_conn", "FallbackAddress")
    Message = apps.get_model("inboxes", "Message")
    account_of = dict(FallbackAddress.objects.values_list("address", "account_id"))

    def address(recipient):
        local, _, domain = str(recipient).strip().lower().rpartition("@")
        return f"{local.partition('+')[0]}@{domain}"

    rows = InboundMessage.objects.filter(account__isnull=True).only("pk", "rcpt_tos").order_by("pk")
    for row in rows.iterator(chunk_size=500):
        groups = {}
        for recipient in row.rcpt_tos or []:
            account_id = account_of.get(address(recipient))
            if account_id is not None:
                groups.setdefault(account_id, []).append(recipient)
        if not groups:
            continue  # its recipients are gone: no account can see it, as before
        (first, first_recipients), *others = groups.items()
        InboundMessage.objects.filter(pk=row.pk).update(account_id=first, rcpt_tos=first_recipients)
        for account_id, recipients in others:
            copy = InboundMessage.objects.get(pk=row.pk)
            copy.pk = None
            copy.account_id, copy.rcpt_tos = account_id, recipients
            copy.save()
            Message.objects.filter(inbound_id=row.pk, account_id=account_id).update(inbound_id=copy.pk)


class Migration(migrations.Migration):

    dependencies = [
        ('channels_conn', '0004_add_fallback_sending_settings'),
        ('inboxhub', '0001_initial'),
        ('inboxes', '0005_add_message_html_omitted'),
    ]

    operations = [
        migrations.AddField(
            model_name='inboundmessage',
            name='account',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='inbound_messages', to='inboxhub.account'),
        ),
        migrations.RunPython(key_spool_rows, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name='inboundmessage',
            index=models.Index(condition=models.Q(('state', 'failed')), fields=['account', 'state', '-received_at'], name='inbound_account_state'),
        ),
    ]
