"""Who else is here (issue 17), in Chromium with two browsers as two agents on one thread: each sees
the other viewing, and writing a reply; a reply sent while the other was writing makes the other's
Send ask first, with the draft and its file kept, and "Send anyway" sends it; a double click sends
once. Replies leave through a capture smarthost (tests/smarthost.py)."""

import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxes import presence
from inboxes.models import Conversation, Message
from inboxhub.celery import app as celery_app
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login
from tests.factories import PASSWORD, make_account
from tests.inboxes.helpers import parsed, receive
from tests.inboxes.inbox_settings_helpers import default_inbox_of, make_member
from tests.smarthost import smarthost

NOTE = b"%PDF-1.4\n% order note\n"


@pytest.fixture(autouse=True)
def quick(monkeypatch, settings, page):
    """Heartbeats every second and "writing" for two, so the test waits seconds, not tens of them."""
    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(presence, "TYPING_SECONDS", 2)
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    settings.TRUSTED_NETWORKS = []
    page.set_default_timeout(15_000)
    yield
    page.goto("about:blank")  # the page says goodbye before the database is emptied


@pytest.fixture
def outbox(settings):
    with smarthost(settings) as handler:
        yield handler


@pytest.fixture
def thread(transactional_db):
    """Account Alpha with paid agents Ada and Ben, and a customer's conversation; its thread's URL."""
    admin = make_account("alpha", company_name="Alpha", full_name="Alice Admin", email="alice@alpha.example")
    make_member(admin.account, "Ada Agent")
    make_member(admin.account, "Ben Baker")
    message = receive(default_inbox_of(admin.account), parsed(subject="Where is my order?", text="Any news?"))
    return reverse("inboxes:thread", args=["alpha", message.conversation_id])


@pytest.fixture
def second_page(browser, live_server, problems):
    """Another browser (its own context: its own session) whose errors fail the test too."""
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP, reduced_motion="reduce")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.page_errors.append(f"second page: {m.text}"))
    page.on("pageerror", lambda error: problems.page_errors.append(f"second page: {error}"))
    yield page
    context.close()


def outgoing() -> list[Message]:
    with scopes_disabled():
        return list(
            Message.objects.filter(direction="outgoing").select_related("sent_by__user").order_by("pk")
        )


def test_two_agents_see_each_other_and_who_is_writing_a_reply(page, second_page, thread):
    ada, ben = page, second_page
    login(ada, "ada.agent@alpha.example", PASSWORD)
    login(ben, "ben.baker@alpha.example", PASSWORD)
    ada.goto(thread)
    ben.goto(thread)

    expect(ada.locator("#presence")).to_contain_text("Ben Baker is viewing")
    expect(ben.locator("#presence")).to_contain_text("Ada Agent is viewing")
    expect(ada.locator("#presence")).not_to_contain_text("Ada Agent")

    ben.get_by_label("Reply", exact=True).press_sequentially("Hello Carol,", delay=20)
    expect(ada.locator("#presence")).to_contain_text("Ben Baker is writing a reply")
    # Two seconds without a keystroke: viewing again.
    expect(ada.locator("#presence")).to_contain_text("Ben Baker is viewing", timeout=10_000)
    assert_accessible(ada)

    ben.close()  # the page says goodbye as it goes
    expect(ada.locator("#presence")).not_to_contain_text("Ben Baker", timeout=5_000)
    assert_fits_mobile(ada)


def test_a_reply_sent_meanwhile_makes_send_ask_first_and_send_anyway_sends_the_kept_draft(
    page, second_page, thread, outbox
):
    ada, ben = page, second_page
    login(ada, "ada.agent@alpha.example", PASSWORD)
    login(ben, "ben.baker@alpha.example", PASSWORD)
    ben.goto(thread)
    ben.get_by_label("Reply", exact=True).fill("We will refund you today.")
    ben.get_by_label(re.compile(r"^Attachments")).set_input_files(
        {"name": "order-note.pdf", "mimeType": "application/pdf", "buffer": NOTE}
    )

    ada.goto(thread)
    ada.get_by_label("Reply", exact=True).fill("Your parcel left this morning.")
    ada.get_by_role("button", name="Send", exact=True).click()
    expect(ada.locator("article.message", has_text="Your parcel left this morning.")).to_be_visible()

    ben.get_by_role("button", name="Send", exact=True).click()
    warning = ben.locator("#reply-warning")
    expect(warning).to_contain_text(re.compile(r"Ada Agent replied \d+ s ago — send anyway\?"))
    expect(warning).to_contain_text("Your parcel left this morning.")
    expect(ben.get_by_role("button", name="Send anyway")).to_be_focused()
    # Nothing sent, the draft and its file as they were.
    expect(ben.get_by_label("Reply", exact=True)).to_have_value("We will refund you today.")
    assert ben.get_by_label(re.compile(r"^Attachments")).evaluate("input => input.files.length") == 1
    assert [m.sent_by.user.full_name for m in outgoing()] == ["Ada Agent"]
    assert_accessible(ben)

    # Send, not "Send anyway": still nothing without the confirmation.
    with ben.expect_response(lambda response: response.url.endswith("/reply/")) as answer:
        ben.get_by_role("button", name="Send", exact=True).click()
    assert answer.value.status == 200
    expect(warning).to_contain_text("send anyway?")
    assert len(outgoing()) == 1

    ben.get_by_role("button", name="Send anyway").click()
    expect(ben.locator("article.message", has_text="We will refund you today.")).to_be_visible()
    expect(ben.get_by_label("Reply", exact=True)).to_have_value("")
    expect(ben.locator("#reply-warning")).to_be_empty()

    replies = outgoing()
    assert [m.sent_by.user.full_name for m in replies] == ["Ada Agent", "Ben Baker"]
    with scopes_disabled():
        assert [a.filename for a in replies[1].attachments.all()] == ["order-note.pdf"]
    assert outbox.received.wait(10)
    sent = [mail.get_body(("plain",)).get_content() for _, mail in outbox.messages]
    assert len(sent) == 2
    assert "Your parcel left this morning." in sent[0] and "We will refund you today." in sent[1]


def test_a_double_click_on_send_sends_one_reply(page, thread, outbox):
    login(page, "ada.agent@alpha.example", PASSWORD)
    page.goto(thread)
    page.get_by_label("Reply", exact=True).fill("Your parcel left this morning.")

    page.get_by_role("button", name="Send", exact=True).dblclick()

    expect(page.locator("article.message", has_text="Your parcel left this morning.")).to_have_count(1)
    expect(page.get_by_label("Reply", exact=True)).to_have_value("")
    page.wait_for_timeout(1_000)  # a second request, had one gone, has had time to land
    assert len(outgoing()) == 1
    assert len(outbox.messages) == 1
    with scopes_disabled():
        assert Conversation.objects.get().messages.count() == 2
