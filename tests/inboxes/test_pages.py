"""Inbox list, thread and mail HTML pages (H1, H2, rows 1, 7, 32, 33)."""

import pytest
from django.urls import reverse
from django_scopes import scope

from inboxes import selectors
from inboxes.models import Conversation
from inboxhub.lib.mail.parsing import Address
from tests.inboxes.helpers import attachment, forward_of, parsed, receive

pytestmark = pytest.mark.django_db
XSS = "<img src=x onerror=alert(1)>"
XSS_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def inbox_url(inbox) -> str:
    return reverse("inboxes:inbox", args=[inbox.account.subdomain, inbox.pk])


def thread_url(message) -> str:
    return reverse("inboxes:thread", args=[message.account.subdomain, message.conversation_id])


def html_url(message) -> str:
    return reverse("inboxes:message_html", args=[message.account.subdomain, message.pk])


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin.user)
    return client


@pytest.fixture
def as_agent(client, agent):
    client.force_login(agent.user)
    return client


@pytest.fixture
def as_outsider(client, outsider):
    client.force_login(outsider.user)
    return client


def test_the_inbox_lists_its_conversations_with_contact_subject_snippet_and_count(as_agent, inbox):
    first = receive(inbox, parsed(message_id="a@customer.example", text="First words of the thread"))
    receive(inbox, parsed(in_reply_to=["a@customer.example"], text="Latest words here"))
    r = as_agent.get(inbox_url(inbox))
    row = r.text.split(f'id="conversation-{first.conversation_id}"')[1].split("</tr>")[0]
    assert "Carol Customer" in row and "carol@customer.example" in row
    assert "Where is my order?" in row
    assert "Latest words here" in row
    assert '<span class="message-count">2<span class="visually-hidden"> messages</span></span>' in row


def test_the_default_inbox_page_lists_the_default_inbox(as_agent, inbox):
    receive(inbox, parsed(subject="Default inbox mail"))
    r = as_agent.get(reverse("inboxes:index", args=[inbox.account.subdomain]))
    assert "Default inbox mail" in r.text


def test_the_newest_conversation_comes_first(as_agent, inbox):
    receive(inbox, parsed(subject="Older one"))
    receive(inbox, parsed(subject="Newer one"))
    text = as_agent.get(inbox_url(inbox)).text
    assert text.index("Newer one") < text.index("Older one")


def test_the_inbox_list_needs_the_same_queries_however_many_conversations(
    as_agent, inbox, django_assert_num_queries
):
    for n in range(3):
        receive(inbox, parsed(subject=f"Conversation {n}", attachments=[attachment()]))
    as_agent.get(inbox_url(inbox))  # the first visit also writes the session
    # session, user, account, membership, inboxes, the conversation page (1),
    # the counts of the sidebar and views (H1), the live counter (H5), the switcher's accounts
    with django_assert_num_queries(9):
        as_agent.get(inbox_url(inbox))
    for n in range(5):
        receive(inbox, parsed(subject=f"More {n}"))
    with django_assert_num_queries(9):
        r = as_agent.get(inbox_url(inbox))
    assert r.text.count('id="conversation-') == 8


def test_conversations_page_by_keyset_without_gaps_or_repeats(inbox):
    for n in range(5):
        receive(inbox, parsed(subject=f"Conversation {n}"))
    seen, cursor = [], None
    with scope(account=inbox.account):
        while True:
            page = selectors.conversation_page(inbox, cursor=cursor, size=2)
            seen += [c.subject for c in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == [f"Conversation {n}" for n in reversed(range(5))]


def test_a_malformed_cursor_shows_the_first_page(as_agent, inbox):
    receive(inbox, parsed(subject="Still here"))
    assert "Still here" in as_agent.get(inbox_url(inbox) + "?before=garbage").text


def test_a_subject_with_markup_is_escaped_in_the_list_the_thread_and_the_title(as_agent, inbox):
    message = receive(inbox, parsed(subject=XSS))
    listing = as_agent.get(inbox_url(inbox)).text
    thread = as_agent.get(thread_url(message)).text
    assert XSS not in listing and XSS_ESCAPED in listing
    assert XSS not in thread
    assert f"<title>{XSS_ESCAPED} · InboxHub</title>" in thread or f"<title>{XSS_ESCAPED}" in thread
    assert f"<h1>{XSS_ESCAPED}</h1>" in thread


def test_names_and_text_with_markup_are_escaped_in_the_thread(as_agent, inbox):
    message = receive(
        inbox,
        parsed(
            sender=Address(name='"><script>alert(1)</script>', email="carol@customer.example"),
            text="<script>alert(2)</script>",
        ),
    )
    text = as_agent.get(thread_url(message)).text
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text


def test_the_thread_shows_every_message_with_from_to_cc_and_date(as_agent, inbox):
    first = receive(
        inbox,
        parsed(
            message_id="a@customer.example",
            cc=[Address(name="Dave", email="dave@customer.example")],
            text="The first message",
        ),
    )
    receive(inbox, parsed(in_reply_to=["a@customer.example"], text="The second message"))
    text = as_agent.get(thread_url(first)).text
    assert text.count('class="card message') == 2
    assert "The first message" in text and "The second message" in text
    assert "Dave &lt;dave@customer.example&gt;" in text
    assert "support@alpha.inbox.localhost" in text
    assert 'datetime="2026-11-20T09:30:00+00:00"' in text


def test_the_thread_shows_mail_html_in_a_sandboxed_frame_without_scripts(as_agent, inbox):
    message = receive(inbox, parsed(html="<p>Hello <b>there</b></p>"))
    text = as_agent.get(thread_url(message)).text
    frame = text.split("<iframe", 1)[1].split(">", 1)[0]
    # allow-same-origin without allow-scripts: the page reads the height, nothing runs inside (H2).
    assert 'sandbox="' in frame and "allow-scripts" not in frame
    assert f'src="{html_url(message)}"' in frame


def test_mail_html_is_served_sanitized_with_a_sandbox_policy_and_nosniff(as_agent, inbox):
    message = receive(inbox, parsed(html='<p>Hi</p><script>alert(1)</script><img src=x onerror="alert(2)">'))
    r = as_agent.get(html_url(message))
    assert r.status_code == 200
    policy = r.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox") and "allow-scripts" not in policy and "default-src 'none'" in policy
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<p>Hi</p>" in r.text
    assert "<script>alert" not in r.text and "onerror" not in r.text


def test_a_message_without_html_has_no_html_page(as_agent, inbox):
    message = receive(inbox, parsed(html=""))
    assert as_agent.get(html_url(message)).status_code == 404


def test_admins_see_how_each_message_was_threaded_and_attributed(as_admin, inbox):
    message = receive(inbox, parsed())
    text = as_admin.get(thread_url(message)).text
    assert "How this message was threaded and attributed" in text
    assert "started a new conversation" in text


def test_agents_do_not_see_the_threading_explanation(as_agent, inbox):
    message = receive(inbox, parsed())
    assert "How this message was threaded and attributed" not in as_agent.get(thread_url(message)).text


def test_everyone_sees_a_different_sender_flagged(as_agent, inbox):
    first = receive(inbox, parsed(message_id="a@customer.example"))
    receive(
        inbox,
        parsed(sender=Address(name="", email="mallory@evil.example"), in_reply_to=["a@customer.example"]),
    )
    text = as_agent.get(thread_url(first)).text
    assert "Different sender" in text
    assert "mallory@evil.example is not this conversation's contact" in text


def test_a_strangers_forward_shows_the_detected_original(as_agent, inbox):
    message = receive(
        inbox, forward_of(Address(name="Carol", email="carol@customer.example"), by="eve@x.example")
    )
    text = as_agent.get(thread_url(message)).text
    assert "Detected forward (not trusted" in text
    assert "Carol &lt;carol@customer.example&gt;" in text


def test_an_attachment_filename_with_markup_is_escaped_in_the_thread(as_agent, inbox):
    message = receive(inbox, parsed(attachments=[attachment(filename='"><svg onload=alert(1)>.png')]))
    text = as_agent.get(thread_url(message)).text
    assert "<svg onload" not in text
    assert "&quot;&gt;&lt;svg onload=alert(1)&gt;.png" in text


def test_an_outsider_gets_404_for_the_inbox(as_outsider, inbox):
    assert as_outsider.get(inbox_url(inbox)).status_code == 404


def test_an_outsider_gets_404_for_a_thread(as_outsider, inbox):
    message = receive(inbox, parsed())
    assert as_outsider.get(thread_url(message)).status_code == 404


def test_an_outsider_gets_404_for_mail_html(as_outsider, inbox):
    message = receive(inbox, parsed(html="<p>secret</p>"))
    assert as_outsider.get(html_url(message)).status_code == 404


def test_a_member_asking_for_another_accounts_thread_under_their_own_account_gets_404(
    as_outsider, outsider, inbox
):
    message = receive(inbox, parsed())
    url = reverse("inboxes:thread", args=[outsider.account.subdomain, message.conversation_id])
    assert as_outsider.get(url).status_code == 404
    with scope(account=inbox.account):
        assert Conversation.objects.filter(pk=message.conversation_id).exists()


def test_the_thread_needs_the_same_queries_however_many_messages(as_agent, inbox, django_assert_num_queries):
    first = receive(inbox, parsed(message_id="a@customer.example", attachments=[attachment()]))
    as_agent.get(thread_url(first))  # the first visit also writes the session
    # session, user, account, membership, the conversation, the viewer's read mark, its messages, their
    # attachments, its activity, its assignment decisions, who can be assigned, the composer's fallback
    # address and the newest reply it has seen, the live counter, the contact panel's contact, its other
    # addresses and conversations, the switcher's accounts
    with django_assert_num_queries(18):
        as_agent.get(thread_url(first))
    for n in range(3):
        receive(inbox, parsed(in_reply_to=["a@customer.example"], attachments=[attachment(f"{n}.pdf")]))
    with django_assert_num_queries(18):
        r = as_agent.get(thread_url(first))
    assert r.text.count('class="card message') == 4


def test_the_thread_says_why_an_oversized_html_version_is_not_shown(as_agent, inbox, settings):
    settings.MAX_HTML_BYTES = 100
    message = receive(inbox, parsed(html="<p>" + "news " * 100 + "</p>", text="The news, in text."))
    text = as_agent.get(thread_url(message)).text
    assert "The HTML version is not shown: the whole HTML" in text
    assert "The news, in text." in text
    assert "<iframe" not in text
