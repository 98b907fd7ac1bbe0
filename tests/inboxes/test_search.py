"""Search (issue 17): by contact name or address, subject and message text; only what the searcher sees."""

import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxes.models import Contact, Conversation
from inboxes.search import Filters, highlight, query_words, search_conversations
from inboxhub.lib.mail.parsing import Address
from tests.corpora import CORPORA
from tests.inboxes.helpers import default_inbox, listed_conversation, parsed, receive
from tests.inboxes.inbox_settings_helpers import make_inbox, make_member

pytestmark = pytest.mark.django_db


def conversation(inbox, subject, *, text="", contact="carol", name=None, at=None, **fields) -> Conversation:
    name = contact.title() if name is None else name
    email = f"{contact}@customer.example"
    return listed_conversation(inbox, subject, email=email, name=name, text=text, at=at, **fields)


def search_url(account) -> str:
    return reverse("inboxes:search", args=[account.subdomain])


def search(client, member, **params):
    client.force_login(member.user)
    return client.get(search_url(member.account), params)


def found(response) -> list[int]:
    """The conversations listed, in order."""
    return [int(pk) for pk in re.findall(r'<li id="conversation-(\d+)"', response.text)]


def result(response, conversation: Conversation) -> str:
    return response.text.split(f'id="conversation-{conversation.pk}"')[1].split("</li>")[0]


# --- each field ---------------------------------------------------------------------------


def test_a_word_of_a_received_message_finds_its_conversation_with_the_word_marked(client, admin, inbox):
    message = receive(
        inbox, parsed(subject="Delivery", text="The parcel arrived crushed, the vase is broken.")
    )
    conversation(inbox, "Other", text="Nothing to see here.")
    r = search(client, admin, q="vase")
    assert r.status_code == 200
    assert found(r) == [message.conversation_id]
    assert "the <mark>vase</mark> is broken" in result(r, message.conversation)
    assert "1 conversation matches “vase”." in r.text


def test_the_contact_name_finds_their_conversations(client, admin, inbox):
    wanted = conversation(inbox, "Hello", contact="zoe", name="Zoë Quartermaine")
    conversation(inbox, "Hello", contact="carol")
    r = search(client, admin, q="quartermaine")
    assert found(r) == [wanted.pk]
    assert "Zoë <mark>Quartermaine</mark>" in result(r, wanted)


def test_the_contact_address_or_its_domain_finds_their_conversations(client, admin, inbox):
    wanted = conversation(inbox, "Hello", contact="zoe")
    other = conversation(inbox, "Hello", contact="carol")
    assert found(search(client, admin, q="zoe@customer.example")) == [wanted.pk]
    assert set(found(search(client, admin, q="customer.example"))) == {wanted.pk, other.pk}


def test_a_word_of_the_subject_finds_the_conversation_and_is_marked(client, admin, inbox):
    wanted = conversation(inbox, "Invoice 4411 is wrong", text="Please look.")
    conversation(inbox, "Something else", text="Please look.")
    r = search(client, admin, q="4411")
    assert found(r) == [wanted.pk]
    assert "Invoice <mark>4411</mark> is wrong" in result(r, wanted)


def test_every_word_must_be_in_the_message_its_subject_or_its_sender(client, admin, inbox):
    both = conversation(inbox, "Refund please", text="The kettle leaks.")
    conversation(inbox, "Refund please", text="The toaster burns.")
    assert found(search(client, admin, q="refund kettle")) == [both.pk]


def test_a_quoted_phrase_and_an_excluded_word(client, admin, inbox):
    phrase = conversation(inbox, "A", text="my order never arrived")
    reversed_words = conversation(inbox, "B", text="arrived never, the order")
    assert found(search(client, admin, q='"never arrived"')) == [phrase.pk]
    assert found(search(client, admin, q="order -my")) == [reversed_words.pk]


def test_words_are_matched_in_any_language_without_stemming(client, admin, inbox):
    german = conversation(inbox, "Frage", text="Die Lieferung ist nicht angekommen, bitte prüfen.")
    assert found(search(client, admin, q="PRÜFEN")) == [german.pk]
    assert found(search(client, admin, q="nicht")) == [german.pk]  # a stop word in German, kept


def test_a_subject_match_ranks_above_a_match_in_the_text_only(client, admin, inbox):
    now = timezone.now()
    in_text = conversation(inbox, "Question", text="About the warranty card.", at=now)
    in_subject = conversation(inbox, "Warranty", text="Hello.", at=now - timedelta(days=30))
    assert found(search(client, admin, q="warranty")) == [in_subject.pk, in_text.pk]
    assert found(search(client, admin, q="warranty", order="newest")) == [in_text.pk, in_subject.pk]


def test_renaming_a_contact_makes_them_findable_by_the_new_name(client, admin, inbox):
    wanted = conversation(inbox, "Hello", contact="zoe", name="Zoe Before")
    with scopes_disabled():
        Contact.objects.filter(pk=wanted.contact_id).update(name="Zoe Afterwards")
    assert found(search(client, admin, q="afterwards")) == [wanted.pk]
    assert found(search(client, admin, q="before")) == []


def test_a_message_of_several_megabytes_is_stored_and_found_by_its_first_words(client, admin, inbox):
    huge = "opening words " + " ".join(f"w{n}" for n in range(400_000))  # ~3 MB, past a tsvector's 1 MB
    wanted = conversation(inbox, "Log file", text=huge)
    assert found(search(client, admin, q="opening")) == [wanted.pk]


# --- who sees what ------------------------------------------------------------------------


def test_an_agent_never_finds_a_conversation_of_an_inbox_they_are_not_on(client, admin, agent, inbox):
    private = make_inbox(admin, "Private", members=[make_member(admin.account, "Dana Insider")])
    hidden = conversation(private, "Merger plans", text="The codeword is pelican.")
    seen = conversation(inbox, "Birds", text="A pelican flew by.")
    assert found(search(client, agent, q="pelican")) == [seen.pk]
    assert found(search(client, agent, q="merger")) == []
    # An admin sees every inbox (B6), so finds both.
    assert set(found(search(client, admin, q="pelican"))) == {hidden.pk, seen.pk}


def test_an_agent_cannot_search_an_inbox_hidden_from_them_by_its_id(client, admin, agent):
    private = make_inbox(admin, "Private", members=[make_member(admin.account, "Dana Insider")])
    conversation(private, "Merger plans", text="The codeword is pelican.")
    r = search(client, agent, q="pelican", inbox=private.pk)
    assert r.status_code == 400
    assert found(r) == []
    assert "Select a valid choice" in r.text


def test_another_accounts_unique_word_finds_nothing(client, admin, outsider, inbox):
    theirs = default_inbox(outsider.account)
    conversation(
        theirs, "Xylophone tuning", text="Secret word quokkafish.", contact="dave", name="Dave Bravo"
    )
    for word in ("quokkafish", "xylophone", "dave@customer.example", "bravo"):
        r = search(client, admin, q=word)
        assert r.status_code == 200 and found(r) == [], word
        assert "No conversation matches" in r.text


def test_an_outsider_gets_404_from_the_accounts_search(client, admin, outsider, inbox):
    conversation(inbox, "Alpha secret", text="pelican")
    client.force_login(outsider.user)
    r = client.get(search_url(admin.account), {"q": "pelican"})
    assert r.status_code == 404
    assert "pelican" not in r.text


def test_another_accounts_member_is_not_a_valid_assignee_filter(client, admin, outsider, inbox):
    conversation(inbox, "Hello", text="pelican")
    r = search(client, admin, q="pelican", assignee=outsider.pk)
    assert r.status_code == 400
    assert found(r) == []


def test_a_search_outside_any_scope_raises(admin, inbox):
    from django_scopes import ScopeError

    with pytest.raises(ScopeError):
        search_conversations(admin, "pelican", Filters(inbox_ids=[inbox.pk]))


# --- filters, paging, the box ---------------------------------------------------------------


def test_filters_by_inbox_status_assignee_and_date(client, admin, agent, inbox):
    sales = make_inbox(admin, "Sales")
    now = timezone.now()
    open_mine = conversation(inbox, "Pump A", text="pump", assignee=agent, at=now)
    closed = conversation(inbox, "Pump B", text="pump", status="closed", at=now - timedelta(days=1))
    unassigned = conversation(sales, "Pump C", text="pump", at=now - timedelta(days=40))
    assert found(search(client, admin, q="pump", inbox=sales.pk)) == [unassigned.pk]
    assert found(search(client, admin, q="pump", status="closed")) == [closed.pk]
    assert found(search(client, admin, q="pump", assignee=agent.pk)) == [open_mine.pk]
    assert set(found(search(client, admin, q="pump", assignee="none"))) == {closed.pk, unassigned.pk}
    since = (now - timedelta(days=10)).date().isoformat()
    assert set(found(search(client, admin, q="pump", since=since))) == {open_mine.pk, closed.pk}
    until = (now - timedelta(days=10)).date().isoformat()
    assert found(search(client, admin, q="pump", until=until)) == [unassigned.pk]


def test_a_date_range_that_ends_before_it_starts_is_refused_with_the_reason(client, admin, inbox):
    r = search(client, admin, q="pump", since="2026-12-05", until="2026-12-01")
    assert r.status_code == 400
    assert "The end of the date range is before its start." in r.text


def test_results_come_a_page_at_a_time(client, admin, inbox):
    start = datetime(2026, 12, 1, tzinfo=UTC)
    made = [conversation(inbox, f"Pump {n}", text="pump", at=start + timedelta(minutes=n)) for n in range(30)]
    first = search(client, admin, q="pump", order="newest")
    assert found(first) == [c.pk for c in reversed(made)][:25]
    assert "30 conversations match “pump”." in first.text
    next_url = re.search(r'href="(\?[^"]*page=2[^"]*)"', first.text).group(1).replace("&amp;", "&")
    second = client.get(search_url(admin.account) + next_url)
    assert found(second) == [c.pk for c in reversed(made)][25:]
    assert "Previous page" in second.text and "Next page" not in second.text


def test_the_page_runs_the_same_queries_for_one_result_or_a_full_page(client, admin, inbox):
    conversation(inbox, "Pump", text="pump")
    client.force_login(admin.user)
    client.get(search_url(admin.account), {"q": "pump"})  # the session's first request writes more
    with CaptureQueriesContext(connection) as one:
        client.get(search_url(admin.account), {"q": "pump"})
    for n in range(30):
        conversation(inbox, f"Pump {n}", text="pump", contact=f"c{n}")
    with CaptureQueriesContext(connection) as page:
        r = client.get(search_url(admin.account), {"q": "pump"})
    assert len(found(r)) == 25
    assert len(page.captured_queries) == len(one.captured_queries) < 20


def test_the_inbox_page_has_the_search_box(client, admin, inbox):
    client.force_login(admin.user)
    r = client.get(reverse("inboxes:index", args=[admin.account.subdomain]))
    box = r.text.split('role="search"')[1].split("</form>")[0]
    assert 'type="search" id="inbox-search" name="q"' in box
    assert '<label for="inbox-search"' in box
    assert f'action="{search_url(admin.account)}"' in r.text


def test_an_empty_search_asks_for_words(client, admin, inbox):
    conversation(inbox, "Pump", text="pump")
    r = search(client, admin, q="   ")
    assert r.status_code == 200 and found(r) == []
    assert "What are you looking for?" in r.text


def test_the_fallback_without_full_text_search_finds_each_field(admin, inbox):
    by_text = conversation(inbox, "One", text="The kettle leaks.")
    by_subject = conversation(inbox, "Kettle broken", contact="dave")
    by_name = conversation(inbox, "Three", contact="zoe", name="Zoe Kettleborough")
    with scope(account=admin.account):
        results = search_conversations(admin, "kettle", Filters(inbox_ids=[inbox.pk]), full_text=False)
    assert {hit.conversation.pk for hit in results.hits} == {by_text.pk, by_subject.pk, by_name.pk}
    snippet = next(hit.snippet for hit in results.hits if hit.conversation.pk == by_text.pk)
    assert "The <mark>kettle</mark> leaks." in snippet


# --- hostile text --------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def _markup_of(html: str) -> list[tuple[str, list]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def test_highlighting_hostile_text_yields_no_markup_but_mark():
    vectors = json.loads((CORPORA / "xss" / "vectors.json").read_text())
    payloads = {entry["payload"] for entry in vectors}
    assert len(payloads) > 300
    for payload in payloads:
        words = query_words(payload)[:3] or ["script"]
        for html in (highlight(payload, words), highlight(payload, words, snippet=True)):
            assert {tag for tag, _ in _markup_of(html)} <= {"mark"}, payload
            assert all(attrs == [] for _, attrs in _markup_of(html)), payload


def test_hostile_subject_name_and_text_are_shown_as_text_on_the_results_page(client, admin, inbox):
    payload = '<img src=x onerror=alert(1)>"><svg onload=alert(2)>'
    wanted = conversation(
        inbox, f"Pump {payload}", text=f"pump {payload} \ue000", contact="evil", name=f"Pump {payload}"
    )
    r = search(client, admin, q="pump onerror")
    assert found(r) == [wanted.pk]
    shown = result(r, wanted)
    assert {tag for tag, _ in _markup_of(shown)} <= {"div", "a", "span", "p", "mark", "time"}
    assert "&lt;img src=x <mark>onerror</mark>=alert(1)&gt;" in shown
    listed = r.text.split('<ol class="search-results')[1].split("</ol>")[0]
    assert "<img" not in listed and "<svg" not in listed


def test_query_words_leave_out_excluded_words_and_or():
    assert query_words('Refund OR "never arrived" -spam zoe@customer.example') == [
        "refund",
        "never",
        "arrived",
        "zoe@customer.example",
    ]


def test_the_contact_that_received_mail_created_is_found_by_name(client, admin, inbox):
    message = receive(inbox, parsed(sender=Address(name="Quentin Blake", email="quentin@books.example")))
    r = search(client, admin, q="quentin")
    assert found(r) == [message.conversation_id]
