"""Keyboard shortcuts in Chromium (issue 17, point 5): j/k through the list and from one thread to the
next, o opens, n/p walk the messages, r reply, a assign to me, e close, / search, ? the list of them;
nothing fires while typing or with a modifier; each action or refusal is announced; axe clean.
"""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from inboxes.models import Contact, Conversation, Inbox, Message
from inboxhub.models import Membership
from tests.e2e.conftest import DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tests.factories import PASSWORD, MembershipFactory, make_account

ALICE = "alice@alpha.example"


@pytest.fixture
def alice(transactional_db) -> Membership:
    return make_account("alpha", company_name="Alpha", full_name="Alice Admin", email=ALICE)


def inbox_of(member: Membership) -> Inbox:
    with scopes_disabled():
        return member.account.inboxes.get(is_default=True)


def a_conversation(
    inbox: Inbox, subject: str, *, minutes_ago: int, messages: int = 1, **fields
) -> Conversation:
    """A conversation whose newest message is `minutes_ago` old; the list shows newest first."""
    with scopes_disabled():
        contact, _ = Contact.objects.get_or_create(
            account=inbox.account, email=f"{subject.lower().replace(' ', '.')}@customer.example"
        )
        at = timezone.now() - timedelta(minutes=minutes_ago)
        made = Conversation.objects.create(
            account=inbox.account,
            inbox=inbox,
            contact=contact,
            subject=subject,
            created_at=at,
            last_message_at=at,
            **fields,
        )
        for n in range(messages):
            Message.objects.create(
                account=inbox.account,
                conversation=made,
                inbox=inbox,
                subject=subject,
                text=f"Message {n + 1} about {subject}.",
                from_email=contact.email,
                created_at=at - timedelta(minutes=messages - n),
                threaded_by=Message.ThreadedBy.NEW_CONVERSATION,
                attributed_by=Message.AttributedBy.FROM,
            )
        return made


def three_conversations(member: Membership) -> list[Conversation]:
    inbox = inbox_of(member)
    return [
        a_conversation(inbox, "Broken widget", minutes_ago=5),
        a_conversation(inbox, "Missing invoice", minutes_ago=10),
        a_conversation(inbox, "Late delivery", minutes_ago=15),
    ]


def inbox_url(member: Membership) -> str:
    return reverse("inboxes:inbox", args=[member.account.subdomain, inbox_of(member).pk])


def thread_url(conversation: Conversation) -> str:
    return reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])


def status(page):
    return page.locator("#keyboard-status")


def refreshed(conversation: Conversation) -> Conversation:
    with scopes_disabled():
        return Conversation.objects.get(pk=conversation.pk)


def test_j_and_k_move_a_visible_focus_through_the_list_and_o_opens_the_chosen_conversation(page, alice):
    three_conversations(alice)
    login(page, ALICE, PASSWORD)
    page.goto(inbox_url(alice))
    rows = page.locator("table.conversation-list tbody tr")

    page.keyboard.press("j")
    expect(page.get_by_role("link", name="Broken widget")).to_be_focused()
    expect(rows.nth(0)).to_have_class(re.compile("is-kbd-current"))
    page.keyboard.press("j")
    expect(page.get_by_role("link", name="Missing invoice")).to_be_focused()
    expect(rows.nth(0)).not_to_have_class(re.compile("is-kbd-current"))
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(page.get_by_role("link", name="Broken widget")).to_be_focused()
    expect(status(page)).to_have_text("This is the first conversation.")
    for _ in range(3):
        page.keyboard.press("j")
    expect(page.get_by_role("link", name="Late delivery")).to_be_focused()
    expect(status(page)).to_have_text("This is the last conversation on this page.")
    # The row says where the focus is: its cells take the accent colour.
    background = rows.nth(2).locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert background == "rgb(237, 241, 255)"
    screenshot(page, "keyboard-list-desktop")
    assert_accessible(page)

    page.keyboard.press("k")
    with page.expect_navigation():
        page.keyboard.press("o")
    expect(page.get_by_role("heading", level=1)).to_have_text("Missing invoice")


def test_j_scrolls_the_chosen_row_into_view(page, alice):
    inbox = inbox_of(alice)
    for n in range(30):
        a_conversation(inbox, f"Question {n + 1:02}", minutes_ago=n + 1)
    login(page, ALICE, PASSWORD)
    page.goto(inbox_url(alice))
    last = page.get_by_role("link", name="Question 30")
    expect(last).not_to_be_in_viewport()

    for _ in range(30):
        page.keyboard.press("j")
    expect(last).to_be_focused()
    expect(last).to_be_in_viewport()


def test_on_a_thread_j_and_k_open_the_next_and_previous_conversation_of_the_list_and_u_goes_back(page, alice):
    three_conversations(alice)
    login(page, ALICE, PASSWORD)
    page.goto(inbox_url(alice))
    page.get_by_role("link", name="Missing invoice").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Missing invoice")

    with page.expect_navigation():
        page.keyboard.press("j")
    expect(heading).to_have_text("Late delivery")
    page.keyboard.press("j")
    expect(status(page)).to_have_text("This is the last conversation of the list.")
    with page.expect_navigation():
        page.keyboard.press("k")
    with page.expect_navigation():
        page.keyboard.press("k")
    expect(heading).to_have_text("Broken widget")
    page.keyboard.press("k")
    expect(status(page)).to_have_text("This is the first conversation of the list.")

    with page.expect_navigation():
        page.keyboard.press("u")
    assert page.url.endswith(inbox_url(alice))
    # Back on the list, j goes on from the conversation opened last.
    page.keyboard.press("j")
    expect(page.get_by_role("link", name="Missing invoice")).to_be_focused()


def test_a_thread_on_the_kept_list_but_opened_another_way_does_not_follow_that_list(page, alice):
    _, missing, _ = three_conversations(alice)
    login(page, ALICE, PASSWORD)
    page.goto(inbox_url(alice))
    page.get_by_role("link", name="Broken widget").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Broken widget")

    page.goto(thread_url(missing))  # a bookmark, a link in a mail: not from the list
    page.keyboard.press("k")
    expect(status(page)).to_contain_text("This conversation was not opened from a list.")
    assert page.url.endswith(thread_url(missing))


def test_a_thread_opened_without_a_list_says_so_on_j_and_n_p_walk_its_messages(page, alice):
    conversation = a_conversation(inbox_of(alice), "Broken widget", minutes_ago=5, messages=3)
    login(page, ALICE, PASSWORD)
    page.goto(thread_url(conversation))

    page.keyboard.press("j")
    expect(status(page)).to_have_text(
        "This conversation was not opened from a list. Press u for the list, n and p for its messages."
    )
    assert page.url.endswith(thread_url(conversation))
    messages = page.locator("ol.thread > li")
    page.keyboard.press("n")
    expect(messages.nth(0)).to_be_focused()
    expect(status(page)).to_have_text("Message 1 of 3.")
    page.keyboard.press("n")
    page.keyboard.press("n")
    expect(messages.nth(2)).to_be_focused()
    expect(messages.nth(2)).to_contain_text("Message 3 about Broken widget.")
    page.keyboard.press("n")
    expect(status(page)).to_have_text("This is the newest message.")
    page.keyboard.press("p")
    expect(messages.nth(1)).to_be_focused()
    expect(status(page)).to_have_text("Message 2 of 3.")


def test_r_a_and_e_reply_assign_and_close_through_the_page_controls_and_say_what_happened(page, alice):
    conversation = a_conversation(inbox_of(alice), "Broken widget", minutes_ago=5)
    login(page, ALICE, PASSWORD)
    page.goto(thread_url(conversation))

    page.keyboard.press("r")
    reply = page.get_by_label("Reply", exact=True)
    expect(reply).to_be_focused()
    page.keyboard.type("Thanks")
    expect(reply).to_have_value("Thanks")  # the r itself is not typed
    reply.blur()

    with page.expect_navigation():
        page.keyboard.press("a")
    panel = page.get_by_role("region", name="Assignment")
    expect(panel).to_contain_text("Assigned to Alice Admin")
    expect(status(page)).to_have_text("Assigned to Alice Admin.")  # the answer's own message, announced
    assert refreshed(conversation).assignee_id == alice.pk
    page.keyboard.press("a")
    expect(status(page)).to_have_text("This conversation is already assigned to you.")

    with page.expect_navigation():
        page.keyboard.press("e")
    expect(page.get_by_role("button", name="Reopen conversation")).to_be_visible()
    expect(status(page)).to_have_text("Conversation closed.")
    assert refreshed(conversation).status == Conversation.Status.CLOSED
    page.keyboard.press("e")
    expect(status(page)).to_have_text("This conversation is already closed.")
    screenshot(page, "keyboard-thread-closed-desktop")
    assert_accessible(page)


def test_a_refused_shortcut_says_why_and_changes_nothing(page, alice):
    MembershipFactory(
        account=alice.account,
        user__email="fay@alpha.example",
        user__full_name="Fay Free",
        username="fay",
        seat=Membership.Seat.FREE,
    )
    conversation = a_conversation(inbox_of(alice), "Broken widget", minutes_ago=5, assignee=alice)
    login(page, "fay@alpha.example", PASSWORD)
    page.goto(thread_url(conversation))
    reason = page.locator("#assign-refusal").inner_text()
    assert "this one is assigned to Alice Admin" in reason

    page.keyboard.press("a")
    expect(status(page)).to_have_text(reason)
    page.keyboard.press("e")
    expect(status(page)).to_contain_text("Alice Admin")
    page.keyboard.press("r")
    expect(status(page)).to_have_text(page.locator("#composer-refusal").inner_text())
    expect(page.get_by_label("Reply", exact=True)).not_to_be_focused()

    page.wait_for_timeout(300)  # a form sent by mistake would have left the page by now
    assert page.url.endswith(thread_url(conversation))
    after = refreshed(conversation)
    assert (after.assignee_id, after.status) == (alice.pk, Conversation.Status.OPEN)


def test_typing_in_a_field_or_holding_a_modifier_fires_no_shortcut(page, alice):
    conversation = a_conversation(inbox_of(alice), "Broken widget", minutes_ago=5)
    login(page, ALICE, PASSWORD)
    page.goto(thread_url(conversation))

    note = page.get_by_label("Note", exact=True)
    note.click()
    page.keyboard.type("jkraenpu/?")
    expect(note).to_have_value("jkraenpu/?")
    note.blur()
    for chord in ("Alt+a", "Control+e", "Meta+a"):
        page.keyboard.press(chord)
    page.wait_for_timeout(300)  # a form sent by mistake would have left the page by now

    assert page.url.endswith(thread_url(conversation))
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(status(page)).to_have_text("")
    after = refreshed(conversation)
    assert (after.assignee_id, after.status) == (None, Conversation.Status.OPEN)


def test_question_mark_lists_the_shortcuts_in_a_dialog_that_esc_closes_giving_the_focus_back(page, alice):
    three_conversations(alice)
    login(page, ALICE, PASSWORD)
    page.goto(inbox_url(alice))
    page.keyboard.press("j")
    chosen = page.get_by_role("link", name="Broken widget")
    expect(chosen).to_be_focused()

    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    for line in ("Next and previous conversation", "Reply", "Assign to me", "Close the conversation"):
        expect(dialog).to_contain_text(line)
    assert dialog.evaluate("d => d.contains(document.activeElement)")
    page.keyboard.press("j")  # the list behind the dialog does not move
    screenshot(page, "keyboard-help-desktop")
    assert_accessible(page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(chosen).to_be_focused()

    hint = page.get_by_role("button", name="Press ? for keyboard shortcuts")
    hint.click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").last.click()
    expect(dialog).to_be_hidden()
    expect(hint).to_be_focused()
    assert_fits_mobile(page)
    page.set_viewport_size(DESKTOP)


def test_slash_focuses_the_search_box_and_from_a_thread_goes_to_it(page, alice):
    conversation = a_conversation(inbox_of(alice), "Broken widget", minutes_ago=5)
    login(page, ALICE, PASSWORD)
    page.goto(thread_url(conversation))

    with page.expect_navigation():
        page.keyboard.press("/")
    search = page.locator("#inbox-search")
    expect(search).to_be_focused()
    page.keyboard.type("widget")
    expect(search).to_have_value("widget")  # the slash is not typed


def test_j_and_k_walk_search_results_too_and_on_to_the_next_result_from_its_thread(page, alice):
    inbox = inbox_of(alice)
    a_conversation(inbox, "Widget broken", minutes_ago=5)
    a_conversation(inbox, "Widget late", minutes_ago=10)
    a_conversation(inbox, "Invoice missing", minutes_ago=15)
    login(page, ALICE, PASSWORD)
    page.goto(inbox_url(alice))

    page.keyboard.press("/")
    page.keyboard.type("widget")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.locator("main h1").click()  # out of the search box
    page.keyboard.press("j")
    expect(page.get_by_role("link", name="Widget broken")).to_be_focused()
    page.keyboard.press("j")
    expect(page.get_by_role("link", name="Widget late")).to_be_focused()
    page.keyboard.press("j")
    expect(status(page)).to_have_text("This is the last conversation on this page.")
    assert_accessible(page)

    page.keyboard.press("k")
    with page.expect_navigation():
        page.keyboard.press("o")
    expect(page.get_by_role("heading", level=1)).to_have_text("Widget broken")
    with page.expect_navigation():
        page.keyboard.press("j")
    expect(page.get_by_role("heading", level=1)).to_have_text("Widget late")
    with page.expect_navigation():
        page.keyboard.press("u")
    assert "q=widget" in page.url
