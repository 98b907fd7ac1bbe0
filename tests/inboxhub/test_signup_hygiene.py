"""Sign-up hygiene (issue 16 point 3): an existing email is not revealed, the founder's address is
confirmed before the account sends mail, sign-up is throttled per IP, subdomains are plain ASCII."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client, TestCase
from django.utils import timezone
from django.utils.html import escape
from django_scopes import scopes_disabled

from inboxes.models import Conversation
from inboxes.replies import FOUNDER_UNVERIFIED
from inboxhub.celery import app as celery_app
from inboxhub.lib.log_tokens import mask_tokens
from inboxhub.models import Account, Membership, SignupAttempt, User
from inboxhub.views.auth import SIGNUP_LIMIT_PER_IP, SIGNUP_THROTTLED
from ingest.pipeline import ingest_inbound
from tests.inboxes.helpers import raw_mail, spool

IPS = ["203.0.113.40", "203.0.113.41"]
NEW = {
    "company_name": "Delta Logistics",
    "subdomain": "delta",
    "full_name": "Dana Delta",
    "email": "dana@delta.example",
    "password": "plum-orbit-canyon-42",
}


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)  # delivered here, as without REDIS_URL


def sign_up(data: dict, *, ip: str = IPS[0], client: Client | None = None, **extra):
    client = client or Client(enforce_csrf_checks=True)
    client.get("/signup/", REMOTE_ADDR=ip)
    token = client.cookies["csrftoken"].value
    # The founder's mail leaves once the sign-up commits (inboxhub.outbound).
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/signup/", {**data, "csrfmiddlewaretoken": token}, REMOTE_ADDR=ip, **extra)


def page_text(response) -> str:
    """The page without its per-response CSRF tokens, to compare two answers."""
    return re.sub(r'(csrftoken": "|csrfmiddlewaretoken" value=")[^"]+', r"\1", response.text)


def link_in(mail) -> str:
    return re.search(r"http://testserver(/signup/verify/[^/\s]+/)", mail.body)[1]


# --- An existing email is not revealed ----------------------------------------------


def test_an_email_with_a_login_gets_the_same_answer_as_a_new_one(admin):
    new = sign_up(NEW, follow=True)
    known = sign_up({**NEW, "subdomain": "echo", "email": "alice@alpha.example"}, follow=True)

    assert known.redirect_chain == new.redirect_chain == [("/signup/sent/", 302)]
    assert page_text(known) == page_text(new)
    assert "Alice" not in known.text


def test_an_email_with_a_login_creates_nothing_and_is_told_by_mail(admin, mailoutbox, eager):
    sign_up({**NEW, "email": "ALICE@alpha.example"})

    assert not Account.objects.filter(subdomain="delta").exists()
    [mail] = mailoutbox
    assert mail.to == ["alice@alpha.example"]
    assert mail.subject == "You already have an InboxHub login"
    assert "http://testserver/login/" in mail.body and "http://testserver/password/reset/" in mail.body
    admin.user.refresh_from_db()
    assert admin.user.full_name == "Alice Admin"


# --- The founder's address is confirmed before the account sends mail -----------------


def test_a_new_founder_is_mailed_a_link_that_confirms_the_address_and_signs_in(db, mailoutbox, eager):
    sign_up(NEW)
    [mail] = mailoutbox
    assert mail.to == ["dana@delta.example"]
    assert Account.objects.get(subdomain="delta").unverified_founder.email == "dana@delta.example"
    client = Client(enforce_csrf_checks=True)

    page = client.get(link_in(mail))
    assert "<h1>Confirm your email address</h1>" in page.text
    token = client.cookies["csrftoken"].value
    response = client.post(link_in(mail), {"csrfmiddlewaretoken": token}, follow=True)

    assert response.redirect_chain[-1] == ("/a/delta/inbox/", 302)
    assert "Your email address is confirmed. Welcome to InboxHub, Dana." in response.text
    assert Account.objects.get(subdomain="delta").unverified_founder is None


def test_a_tampered_link_confirms_nothing(db, mailoutbox, eager):
    sign_up(NEW)
    link = link_in(mailoutbox[0])

    response = Client().post(link.replace("/verify/", "/verify/x"))

    assert response.status_code == 404
    assert Account.objects.get(subdomain="delta").unverified_founder is not None


def test_replies_are_refused_with_the_reason_until_the_founder_confirms(db, mailoutbox, eager):
    sign_up(NEW)
    owner = User.objects.get(email="dana@delta.example")
    ingest_inbound(spool(raw_mail(to="support@delta.inbox.localhost"), "support@delta.inbox.localhost"))
    with scopes_disabled():
        conversation = Conversation.objects.get(account__subdomain="delta")
    client = Client()
    client.post("/login/", {"username": "dana@delta.example", "password": NEW["password"]})

    thread = client.get(f"/a/delta/inbox/c/{conversation.pk}/")
    response = client.post(f"/a/delta/inbox/c/{conversation.pk}/reply/", {"body": "Hello!"}, follow=True)

    assert escape(FOUNDER_UNVERIFIED) in thread.text
    assert escape(FOUNDER_UNVERIFIED) in response.text
    with scopes_disabled():
        assert not conversation.messages.filter(direction="outgoing").exists()
    assert [m.to for m in mailoutbox] == [[owner.email]]  # the confirmation link, nothing else


def test_an_unconfirmed_founder_cannot_invite_members(db, mailoutbox, eager):
    sign_up(NEW)
    client = Client()
    client.post("/login/", {"username": "dana@delta.example", "password": NEW["password"]})

    response = client.post(
        "/a/delta/settings/members/add/",
        {
            "full_name": "Eve",
            "email": "eve@elsewhere.example",
            "seat": "free",
            "permission": "agent",
            "how": "invite",
        },
    )

    assert response.status_code == 400
    assert "Confirm the email address this account was signed up with before adding members" in response.text
    with scopes_disabled():
        assert not Membership.objects.filter(user__email="eve@elsewhere.example").exists()


def test_another_account_made_before_confirming_waits_for_the_same_link(db, mailoutbox, eager):
    sign_up(NEW)
    client = Client()
    client.post("/login/", {"username": "dana@delta.example", "password": NEW["password"]})
    client.post("/signup/", {"company_name": "Delta Two", "subdomain": "delta-two"})

    assert Account.objects.get(subdomain="delta-two").unverified_founder.email == "dana@delta.example"
    Client().post(link_in(mailoutbox[0]))
    assert not Account.objects.filter(unverified_founder__isnull=False).exists()


# --- Sign-up is throttled per IP ---------------------------------------------------


def test_sign_up_is_throttled_per_ip_with_a_clear_message(db):
    for n in range(SIGNUP_LIMIT_PER_IP):
        sign_up({**NEW, "subdomain": f"delta{n}", "email": f"dana{n}@delta.example"})

    refused = sign_up({**NEW, "subdomain": "one-more", "email": "more@delta.example"})
    elsewhere = sign_up({**NEW, "subdomain": "elsewhere", "email": "else@delta.example"}, ip=IPS[1])

    assert refused.status_code == 429
    assert escape(SIGNUP_THROTTLED) in refused.text
    assert not Account.objects.filter(subdomain="one-more").exists()
    assert elsewhere["Location"] == "/signup/sent/"


def test_the_sign_up_allowance_is_shared_by_every_web_process(db):
    """Counted in the database: a second process (here: the cache emptied, as a process of its own
    starts) sees the sign-ups the first one took."""
    for n in range(SIGNUP_LIMIT_PER_IP):
        sign_up({**NEW, "subdomain": f"delta{n}", "email": f"dana{n}@delta.example"})
    cache.clear()

    assert sign_up({**NEW, "subdomain": "one-more", "email": "more@delta.example"}).status_code == 429


def test_sign_ups_older_than_the_hour_no_longer_count(db):
    with time_machine.travel(timezone.now() - timedelta(minutes=61)):
        for n in range(SIGNUP_LIMIT_PER_IP):
            sign_up({**NEW, "subdomain": f"delta{n}", "email": f"dana{n}@delta.example"})

    assert (
        sign_up({**NEW, "subdomain": "fresh", "email": "fresh@delta.example"})["Location"] == "/signup/sent/"
    )
    assert SignupAttempt.objects.count() == 1  # the old ones were deleted on the way


# --- Subdomains are plain ASCII labels ---------------------------------------------


@pytest.mark.parametrize("subdomain", ["xn--80ak6aa92e", "XN--Delta-9ya", "ab--cd"])
def test_an_encoded_subdomain_is_refused(db, subdomain):
    response = sign_up({**NEW, "subdomain": subdomain})

    assert response.status_code == 200
    assert "a hyphen pair after the first two characters (as in xn--) is not allowed" in response.text
    assert not Account.objects.exists()


def test_signing_up_again_mails_an_unconfirmed_founder_a_new_link(db, mailoutbox, eager):
    sign_up(NEW)
    sign_up({**NEW, "subdomain": "delta-again"})

    first, second = mailoutbox
    assert second.subject == "You already have an InboxHub login"
    assert not Account.objects.filter(subdomain="delta-again").exists()
    Client().post(link_in(second))
    assert Account.objects.get(subdomain="delta").unverified_founder is None


def test_the_confirmation_link_is_masked_in_logs(db, mailoutbox, eager):
    sign_up(NEW)
    link = link_in(mailoutbox[0])

    assert mask_tokens(f'"POST {link} HTTP/1.1" 302') == '"POST /signup/verify/[token]/ HTTP/1.1" 302'
