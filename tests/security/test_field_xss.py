"""B9 and advisories 1, 6, 7, 9: markup in a subject, display name, filename, contact, inbox, team,
company, member, pipeline or stage name is escaped on every page and partial, and in the reply mail.

Every GET endpoint under /a/<subdomain>/ is walked from the URLconf (as a page and as an htmx
partial), so a page added later is checked without an edit here.

Already covered elsewhere: tests/inboxes/test_pages.py (subject in list, thread and <title>;
names and filename in the thread), tests/inboxhub/test_sanitizer.py (mail HTML itself).
"""

import re
from email.utils import formataddr

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from channels_conn.models import FallbackAddress
from inboxes.models import Attachment, Contact, Conversation, Inbox, Message
from inboxhub.celery import app as celery_app
from inboxhub.models import Account, Team, User
from tests.security.conftest import customer_mail, each, fill, ids_for_route, receive_mail, tenant_routes
from tests.smarthost import smarthost
from tickets.models import Pipeline, Stage

pytestmark = pytest.mark.django_db


def payload(field: str) -> str:
    """Breaks out of text, of a quoted attribute and of a <title>; names the field it was put in."""
    return f"</title>\"'><img src=x onerror=alert('{field}')>"


# What a payload looks like when it was not escaped: a live tag (any field's), or an event handler.
LIVE = re.compile(r"<img src=x onerror=|<svg onload=", re.IGNORECASE)


@pytest.fixture
def hostile(world):
    """Account A's names, set to payloads the ways their owners can set them."""
    a = world.a
    with scopes_disabled():
        Account.objects.filter(pk=a.account.pk).update(company_name=payload("company")[:100])
        Inbox.objects.filter(pk=a.open.inbox.pk).update(name=payload("inbox")[:100])
        Team.objects.filter(account=a.account).update(name=payload("team")[:100])
        User.objects.filter(pk=a.members["bob"].user_id).update(full_name=payload("member"))
        Pipeline.objects.filter(account=a.account).update(name=payload("pipeline")[:100])
        Stage.objects.filter(account=a.account).update(name=payload("stage")[:100])
        Contact.objects.filter(pk=a.open.contact.pk).update(name=payload("contact"))
        Conversation.objects.filter(pk=a.open.conversation.pk).update(
            subject=payload("subject"), assignee=a.members["bob"]
        )
        Message.objects.filter(pk=a.open.message.pk).update(
            subject=payload("subject"), from_name=payload("display-name")
        )
        Attachment.objects.filter(pk=a.open.attachment.pk).update(filename=payload("filename") + ".png")
    # And one hostile mail through the real pipeline: subject, display name and filename as sent.
    receive_mail(
        a.open.inbox,
        customer_mail(
            "support@alpha.inbox.localhost",
            sender=formataddr((payload("from"), "eve@hostile.example")),
            subject=payload("mail-subject"),
            message_id="hostile@hostile.example",
            filename=payload("mail-file") + ".pdf",
        ),
    )
    return world


def test_the_payloads_are_in_place(hostile):
    with scopes_disabled():
        assert Conversation.objects.filter(subject=payload("mail-subject")).exists()
        assert Message.objects.filter(from_name=payload("from")).exists()
        assert Attachment.objects.filter(filename__contains="mail-file").exists()
        assert Inbox.objects.get(pk=hostile.a.open.inbox.pk).name.startswith("</title>")


@pytest.mark.parametrize("as_member", ["admin", "bob"])
def test_every_page_and_partial_escapes_every_name(client, hostile, as_member):
    client.force_login(hostile.a.members[as_member].user)
    seen = []

    def check(route, name, headers):
        answer = client.get(fill(route, ids_for_route(name, hostile.a, hostile.a.open)), headers=headers)
        if "html" not in answer.get("Content-Type", "") or answer.status_code in (301, 302, 405):
            return
        text = answer.content.decode()
        seen.append(name)
        found = LIVE.search(text)
        assert found is None, text[max(0, found.start() - 200) : found.end() + 60]

    each([(r, n, h) for r, n in tenant_routes() for h in ({}, {"HX-Request": "true"})], check)
    assert {"inboxes:index", "inboxes:thread", "contacts:list", "tickets:board"} <= set(seen)


def test_the_rename_form_re_renders_a_hostile_name_escaped(client, world):
    inbox = world.a.open.inbox
    client.force_login(world.a.admin.user)

    answer = client.post(
        reverse("inbox_settings:rename", args=["alpha", inbox.pk]), {"name": payload("rename") + "x" * 120}
    )

    assert LIVE.search(answer.content.decode()) is None


def test_a_reply_mail_carries_the_agents_markup_as_text(
    client, world, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """The HTML part of a reply is built from the agent's text: markup in it arrives escaped."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    conversation = world.a.open.conversation
    with scopes_disabled():
        FallbackAddress.objects.filter(channel__inbox=conversation.inbox).update(
            signature_html="<p>Best, {{first_name}}</p>"
        )
    client.force_login(world.a.admin.user)

    with smarthost(settings) as capture, django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("inboxes:reply", args=["alpha", conversation.pk]), {"body": payload("reply-body")}
        )

    [(_, mail)] = capture.messages
    html = mail.get_body(("html",)).get_content()
    assert LIVE.search(html) is None
    assert "&lt;img src=x onerror=alert(" in html
