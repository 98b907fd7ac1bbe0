"""The inbox views (H1): Unassigned, Assigned to me, All open, Closed, with counts; where a member starts."""

import pytest
from django_scopes import scopes_disabled

from inboxes.models import Contact, Conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(admin):
    with scopes_disabled():
        return admin.account.inboxes.get(is_default=True)


@pytest.fixture
def conversations(admin, agent, inbox):
    with scopes_disabled():
        contact = Contact.objects.create(account=admin.account, email="carol@customer.example", name="Carol")

        def make(subject, **fields):
            return Conversation.objects.create(
                account=admin.account, inbox=inbox, contact=contact, subject=subject, **fields
            )

        return {
            "waiting": make("Waiting one"),
            "bobs": make("For Bob", assignee=agent),
            "alices": make("For Alice", assignee=admin),
            "done": make("Done one", assignee=agent, status="closed"),
        }


def subjects(client, view: str) -> set[str]:
    text = client.get(f"/a/alpha/inbox/?view={view}").text
    return {s for s in ("Waiting one", "For Bob", "For Alice", "Done one") if s in text}


def test_each_view_lists_its_conversations(client, agent, conversations):
    client.force_login(agent.user)
    assert subjects(client, "unassigned") == {"Waiting one"}
    assert subjects(client, "mine") == {"For Bob"}
    assert subjects(client, "open") == {"Waiting one", "For Bob", "For Alice"}
    assert subjects(client, "closed") == {"Done one"}


def test_the_views_show_their_counts_for_the_viewer(client, agent, conversations):
    client.force_login(agent.user)
    text = client.get("/a/alpha/inbox/").text
    count = '<span class="count">{0}<span class="visually-hidden"> conversation{1}</span></span>'
    assert "Unassigned " + count.format(1, "") in text
    assert "Assigned to me " + count.format(1, "") in text
    assert "All open " + count.format(3, "s") in text
    assert ">Closed</a>" in text  # no count: it would read every closed conversation


def test_all_open_is_the_default_view_and_an_unknown_view_falls_back_to_it(client, agent, conversations):
    client.force_login(agent.user)
    assert subjects(client, "") == subjects(client, "nonsense") == {"Waiting one", "For Bob", "For Alice"}


def test_the_list_costs_the_same_queries_whatever_the_number_of_conversations(
    client, admin, agent, inbox, conversations, django_assert_num_queries
):
    client.force_login(agent.user)
    client.get("/a/alpha/inbox/")
    # session, user, account, membership, inboxes, the page, the counts, the switcher, the live
    # updates' change counter (H5; a Redis GET with REDIS_URL)
    with django_assert_num_queries(9):
        client.get("/a/alpha/inbox/")
    with scopes_disabled():
        contact = Contact.objects.get(account=admin.account)
        for n in range(20):
            Conversation.objects.create(account=admin.account, inbox=inbox, contact=contact, subject=f"n{n}")
    with django_assert_num_queries(9):
        client.get("/a/alpha/inbox/")


def test_the_account_root_opens_the_members_inbox(client, agent):
    client.force_login(agent.user)
    response = client.get("/a/alpha/")
    assert (response.status_code, response["Location"]) == (302, "/a/alpha/inbox/")


def test_an_outsider_gets_404_at_the_account_root_and_in_the_views(client, outsider, conversations):
    client.force_login(outsider.user)
    assert client.get("/a/alpha/").status_code == 404
    assert client.get("/a/alpha/inbox/?view=unassigned").status_code == 404
