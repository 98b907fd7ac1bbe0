"""The conversation list (H1): Assigned to me across inboxes, counts, unread state per viewer, paging."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxes import selectors
from inboxes.models import Contact, Conversation, Message
from inboxes.read_state import mark_read
from inboxes.services import assign_conversation, set_conversation_status, set_inbox_access
from inboxes.templatetags.conversation_list import age
from tests.inboxes.helpers import default_inbox, listed_conversation
from tests.inboxes.inbox_settings_helpers import make_inbox, make_member

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def sales(admin, agent):
    return make_inbox(admin, "Sales")


@pytest.fixture
def private(admin):
    """An inbox restricted to someone else: the agent does not see it."""
    return make_inbox(admin, "Private", members=[make_member(admin.account, "Dana Insider")])


def conversation(inbox, subject, *, at=None, contact="carol", text="", **fields) -> Conversation:
    return listed_conversation(
        inbox, subject, email=f"{contact}@customer.example", name=contact.title(), text=text, at=at, **fields
    )


def row(text: str, conversation: Conversation) -> str:
    return text.split(f'id="conversation-{conversation.pk}"')[1].split("</tr>")[0]


def sidebar(text: str) -> str:
    return text.split('id="inbox-nav"')[1].split("</nav>")[0]


def count_beside(text: str, label: str) -> int:
    found = re.search(re.escape(label) + r' <span class="count">(\d+)<', sidebar(text))
    assert found, f"no count beside {label}"
    return int(found.group(1))


def mine_url(account) -> str:
    return reverse("inboxes:mine", args=[account.subdomain])


def inbox_url(inbox, view: str = "open") -> str:
    return reverse("inboxes:inbox", args=[inbox.account.subdomain, inbox.pk]) + f"?view={view}"


# --- Assigned to me, across inboxes ---


def test_assigned_to_me_lists_the_agents_open_conversations_of_every_inbox_they_see(
    client, admin, agent, sales, private
):
    inbox = default_inbox(admin.account)
    support_one = conversation(inbox, "Support for Bob", assignee=agent)
    sales_one = conversation(sales, "Sales for Bob", assignee=agent)
    conversation(inbox, "Support for Alice", assignee=admin)
    conversation(sales, "Closed for Bob", assignee=agent, status="closed")
    conversation(inbox, "Nobody's yet")
    # Assigned while the agent could still see it; the inbox is hidden from them now.
    conversation(private, "Private for Bob", assignee=agent)
    client.force_login(agent.user)

    text = client.get(mine_url(admin.account)).text

    assert "<h1>Assigned to me</h1>" in text
    listed = re.findall(r'id="conversation-(\d+)"', text)
    assert listed == [str(sales_one.pk), str(support_one.pk)]  # newest first
    assert '<td class="who">Sales</td>' in row(text, sales_one)  # the Inbox column names where it lives
    assert count_beside(text, "Assigned to me") == 2


def test_the_sidebar_links_assigned_to_me_with_its_count_on_every_inbox_page(client, admin, agent, sales):
    conversation(sales, "Sales for Bob", assignee=agent)
    client.force_login(agent.user)

    text = client.get(inbox_url(default_inbox(admin.account))).text

    assert f'href="{mine_url(admin.account)}"' in sidebar(text)
    assert count_beside(text, "Assigned to me") == 1


def test_assigned_to_me_says_so_when_nothing_is_assigned(client, agent):
    client.force_login(agent.user)

    text = client.get(mine_url(agent.account)).text

    assert "Nothing assigned to you" in text


def test_an_agent_who_sees_no_inbox_is_told_so(client, admin, agent):
    dana = make_member(admin.account, "Dana Insider")
    with scope(account=admin.account):
        set_inbox_access(default_inbox(admin.account), access="specific", members=[dana], by=admin)
    client.force_login(agent.user)

    text = client.get(reverse("inboxes:index", args=["alpha"])).text

    assert "<h1>Inbox</h1>" in text and "No inbox for you yet" in text
    assert count_beside(text, "Assigned to me") == 0


def test_an_outsider_gets_404_for_assigned_to_me_and_the_counts(client, admin, outsider):
    conversation(default_inbox(admin.account), "Alpha's", assignee=admin)
    client.force_login(outsider.user)

    assert client.get(mine_url(admin.account)).status_code == 404
    assert client.get(reverse("inboxes:counts", args=["alpha"])).status_code == 404


# --- counts ---


def test_each_inbox_in_the_sidebar_shows_its_open_conversations(client, admin, agent, sales, private):
    inbox = default_inbox(admin.account)
    conversation(inbox, "One")
    conversation(inbox, "Two", assignee=agent)
    conversation(inbox, "Done", status="closed")
    conversation(sales, "Three")
    conversation(private, "Hidden")
    client.force_login(agent.user)

    text = client.get(inbox_url(inbox)).text

    assert count_beside(text, inbox.name) == 2
    assert count_beside(text, "Sales") == 1
    assert "Private" not in sidebar(text)  # nor its count: the agent does not see it


def test_an_admin_off_the_access_list_sees_the_restricted_inboxs_count(client, admin, private):
    conversation(private, "Hidden from agents")
    client.force_login(admin.user)

    assert count_beside(client.get(mine_url(admin.account)).text, "Private") == 1


def test_counts_follow_an_assignment_and_a_close(client, admin, agent):
    inbox = default_inbox(admin.account)
    waiting = conversation(inbox, "Waiting")
    client.force_login(agent.user)
    before = client.get(inbox_url(inbox)).text
    assert (count_beside(before, "Assigned to me"), count_beside(before, inbox.name)) == (0, 1)

    with scope(account=admin.account):
        assign_conversation(waiting, agent, by=agent)
    assigned = client.get(inbox_url(inbox)).text
    with scope(account=admin.account):
        set_conversation_status(waiting, Conversation.Status.CLOSED, by=agent)
    closed = client.get(inbox_url(inbox)).text

    assert (count_beside(assigned, "Assigned to me"), count_beside(assigned, inbox.name)) == (1, 1)
    assert '>Unassigned <span class="count">0<' in assigned
    assert (count_beside(closed, "Assigned to me"), count_beside(closed, inbox.name)) == (0, 0)


def test_the_counts_url_answers_the_sidebar_alone_marking_the_current_page(client, admin, agent):
    inbox = default_inbox(admin.account)
    conversation(inbox, "Mine", assignee=agent)
    client.force_login(agent.user)

    r = client.get(reverse("inboxes:counts", args=["alpha"]) + "?current=mine")

    assert r.text.lstrip().startswith('<nav class="sidebar inbox-nav" id="inbox-nav"')
    assert "<html" not in r.text
    assert count_beside(r.text, "Assigned to me") == 1
    assert f'href="{mine_url(admin.account)}" aria-current="page"' in r.text


# --- unread state per viewer ---


def test_a_new_conversation_is_unread_in_bold_with_words_for_screen_readers(client, admin, agent):
    waiting = conversation(default_inbox(admin.account), "New one")
    client.force_login(agent.user)

    listed = row(client.get(inbox_url(waiting.inbox)).text, waiting)

    assert re.match(r' data-at="\d+" class="unread"', listed)
    assert '<span class="visually-hidden">Unread</span>' in listed


def test_opening_the_thread_marks_it_read_for_that_member_only(client, admin, agent):
    waiting = conversation(default_inbox(admin.account), "New one", text="Hello")
    client.force_login(agent.user)
    client.get(reverse("inboxes:thread", args=["alpha", waiting.pk]))

    for_agent = row(client.get(inbox_url(waiting.inbox)).text, waiting)
    client.force_login(admin.user)
    for_admin = row(client.get(inbox_url(waiting.inbox)).text, waiting)

    assert "unread" not in for_agent and "Unread" not in for_agent
    assert "Unread" in for_admin


def add_message(conversation: Conversation, *, sent_by=None) -> None:
    """A message that arrives (or is written, `sent_by` a member) now, as receiving and replying store it."""
    with scopes_disabled():
        Message.objects.create(
            account=conversation.account,
            conversation=conversation,
            inbox=conversation.inbox,
            text="One more thing",
            direction=Message.Direction.OUTGOING if sent_by else Message.Direction.INCOMING,
            sent_by=sent_by,
            threaded_by=Message.ThreadedBy.IN_REPLY_TO,
            attributed_by=Message.AttributedBy.FROM,
        )
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=timezone.now())


def test_a_message_after_the_last_visit_makes_it_unread_again(client, admin, agent):
    waiting = conversation(default_inbox(admin.account), "Ongoing", at=timezone.now() - timedelta(hours=2))
    with scope(account=admin.account):
        mark_read(waiting, by=agent)
    client.force_login(agent.user)
    read = row(client.get(inbox_url(waiting.inbox)).text, waiting)

    add_message(waiting)
    unread = row(client.get(inbox_url(waiting.inbox)).text, waiting)

    assert "Unread" not in read
    assert "Unread" in unread


def test_the_agents_own_reply_leaves_it_read_for_them_and_unread_for_a_colleague(client, admin, agent):
    waiting = conversation(default_inbox(admin.account), "Answered", at=timezone.now() - timedelta(hours=2))
    with scope(account=admin.account):
        mark_read(waiting, by=agent)
        mark_read(waiting, by=admin)

    add_message(waiting, sent_by=agent)
    client.force_login(agent.user)
    for_agent = row(client.get(inbox_url(waiting.inbox)).text, waiting)
    client.force_login(admin.user)
    for_admin = row(client.get(inbox_url(waiting.inbox)).text, waiting)

    assert "Unread" not in for_agent
    assert "Unread" in for_admin


def test_opening_a_thread_again_keeps_one_read_row(admin, agent, unscoped):
    waiting = conversation(default_inbox(admin.account), "Twice")
    mark_read(waiting, by=agent)
    first = waiting.read_states.get().read_at
    mark_read(waiting, by=agent)

    assert waiting.read_states.count() == 1
    assert waiting.read_states.get().read_at >= first


# --- each row ---


def test_a_row_shows_contact_subject_snippet_assignee_and_age(client, admin, agent):
    listed = conversation(
        default_inbox(admin.account),
        "Broken widget",
        contact="dora",
        text="It stopped working on Tuesday.",
        assignee=admin,
        at=timezone.now() - timedelta(hours=3, minutes=10),
    )
    client.force_login(agent.user)

    cells = row(client.get(inbox_url(listed.inbox)).text, listed)

    assert "Dora" in cells and "dora@customer.example" in cells
    assert "Broken widget" in cells and "It stopped working on Tuesday." in cells
    assert "Alice Admin" in cells
    moment = timezone.localtime(listed.last_message_at)
    assert f'<time datetime="{moment.isoformat()}"' in cells
    assert re.search(r'title="[^"]*\d{4}[^"]*">3 h</time>', cells)


def test_a_row_built_once_shows_every_later_change_of_what_it_shows(client, admin, agent):
    """Rows are kept per web process and shared between viewers: nothing they show may go stale."""
    listed = conversation(default_inbox(admin.account), "Broken widget", contact="dora", text="First words")
    client.force_login(agent.user)
    url = inbox_url(listed.inbox)
    first = row(client.get(url).text, listed)
    assert row(client.get(url).text, listed) == first

    def shown_after(change) -> str:
        with scopes_disabled():
            change()
        return row(client.get(url).text, listed)

    def reply():
        Message.objects.create(
            account=listed.account,
            conversation=listed,
            inbox=listed.inbox,
            subject="Re: Broken widget",
            text="Second words",
            threaded_by=Message.ThreadedBy.IN_REPLY_TO,
            attributed_by=Message.AttributedBy.FROM,
        )

    assert "Renamed widget" in shown_after(
        lambda: Conversation.objects.filter(pk=listed.pk).update(subject="Renamed widget")
    )
    assert "Dora Explorer" in shown_after(
        lambda: Contact.objects.filter(pk=listed.contact_id).update(name="Dora Explorer")
    )
    assert "Alice Admin" in shown_after(
        lambda: Conversation.objects.filter(pk=listed.pk).update(assignee=admin)
    )
    cells = shown_after(reply)
    assert "Second words" in cells and 'class="message-count">2' in cells
    assert "unread" in cells
    with scope(account=admin.account):
        mark_read(listed, by=agent)
    assert "unread" not in row(client.get(url).text, listed)
    client.force_login(admin.user)  # another viewer, who never opened it: their own unread state
    assert "unread" in row(client.get(url).text, listed)


@pytest.mark.parametrize(
    ("ago", "shown"),
    [
        (timedelta(seconds=20), "now"),
        (timedelta(minutes=5), "5 min"),
        (timedelta(hours=3, minutes=59), "3 h"),
        (timedelta(days=2, hours=1), "2 d"),
        (timedelta(days=45), "23 Oct"),
        (timedelta(days=400), "2 Nov 2025"),
    ],
)
def test_the_age_is_short_and_becomes_a_date_after_a_month(ago, shown):
    assert age(NOW - ago, NOW) == shown


# --- query counts and paging ---


@pytest.fixture
def busy_inbox(admin, agent, sales):
    """60 conversations per view, each with its own contact and a message; some assigned, some read."""
    inbox = default_inbox(admin.account)
    start = timezone.now() - timedelta(days=1)
    for n in range(60):
        at = start + timedelta(minutes=n)
        assignee = [None, agent, admin][n % 3]
        status = "closed" if n % 4 == 0 else "open"
        made = conversation(
            inbox if n % 5 else sales,
            f"Case {n}",
            at=at,
            contact=f"person{n}",
            text=f"Text {n}",
            assignee=assignee,
            status=status,
        )
        if n % 2:
            with scope(account=admin.account):
                mark_read(made, by=agent)
    return inbox


@pytest.mark.parametrize("view", ["unassigned", "mine", "open", "closed", "across"])
def test_a_list_page_costs_the_same_queries_for_5_rows_as_for_50(
    client, agent, busy_inbox, view, django_assert_num_queries, monkeypatch
):
    client.force_login(agent.user)
    url = mine_url(agent.account) if view == "across" else inbox_url(busy_inbox, view)
    client.get(url)  # the first visit also writes the session
    # session, user, account, membership, inboxes, the page of rows (contacts, assignees, snippets,
    # message counts and unread state in it), the counts, the switcher's accounts, and the live
    # updates' change counter (H5; a Redis GET with REDIS_URL)
    sizes = {}
    for size in (5, 50):
        monkeypatch.setattr(selectors, "PAGE_SIZE", size)
        with django_assert_num_queries(9):
            sizes[size] = client.get(url).text.count('id="conversation-')
    assert sizes[5] == 5 and sizes[50] > 5


def follow_pages(client, url: str) -> list[str]:
    """Every row of a list, following its Older conversations link to the end."""
    seen = []
    while url:
        text = client.get(url).text
        seen += re.findall(r'id="conversation-(\d+)"', text)
        older = re.search(r'href="(\?[^"]*before=[^"]+)">Older conversations', text)
        url = url.split("?")[0] + older.group(1).replace("&amp;", "&") if older else None
    return seen


@pytest.mark.parametrize("view", ["open", "across"])
def test_pages_share_a_timestamp_without_repeating_or_missing_a_row(client, admin, agent, view, monkeypatch):
    inbox = default_inbox(admin.account)
    same_moment = timezone.now() - timedelta(hours=1)
    made = [conversation(inbox, f"Tied {n}", at=same_moment, assignee=agent) for n in range(7)]
    made.append(conversation(inbox, "Older", at=same_moment - timedelta(seconds=1), assignee=agent))
    monkeypatch.setattr(selectors, "PAGE_SIZE", 3)
    client.force_login(agent.user)

    url = mine_url(admin.account) if view == "across" else inbox_url(inbox, "open")
    seen = follow_pages(client, url)

    assert seen == [str(c.pk) for c in sorted(made[:7], key=lambda c: -c.pk)] + [str(made[7].pk)]


def test_a_cursor_without_a_time_zone_shows_the_first_page(client, admin, agent):
    listed = conversation(default_inbox(admin.account), "Still here")
    client.force_login(agent.user)

    text = client.get(inbox_url(listed.inbox) + "&before=2026-12-07T10:00:00_5").text

    assert f'id="conversation-{listed.pk}"' in text
