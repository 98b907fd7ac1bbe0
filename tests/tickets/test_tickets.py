"""Tickets from conversations (C11, G3, H4): opened by mail, created by hand, moved on the tickets page."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from inboxes.activity import describe
from inboxes.models import Contact, Conversation
from inboxes.services import set_inbox_access
from inboxhub.models import AuditEntry
from ingest.pipeline import ingest_inbound
from tests.factories import MembershipFactory
from tests.inboxes.helpers import address_of, default_inbox, raw_mail, spool
from tickets.models import Pipeline, Stage, Ticket, TicketDefaults
from tickets.selectors import ticket_defaults_for
from tickets.services import (
    create_ticket,
    move_ticket,
    open_ticket_for_new_conversation,
    set_ticket_owner,
    set_ticket_priority,
    update_ticket_defaults,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def inbox(admin):
    return default_inbox(admin.account)


@pytest.fixture
def support(admin) -> Pipeline:
    return Pipeline.objects.get(account=admin.account, is_default=True)


def stage(pipeline: Pipeline, name: str) -> Stage:
    with scopes_disabled():
        return pipeline.stages.get(name=name)


def tickets_on(inbox, admin, *, stage_name="Waiting on us", priority="high", owner_mode="nobody", owner=None):
    with scope(account=admin.account):
        pipeline = Pipeline.objects.get(account=admin.account, is_default=True)
        update_ticket_defaults(
            ticket_defaults_for(inbox),
            create_tickets=True,
            pipeline=pipeline,
            stage=pipeline.stages.get(name=stage_name),
            priority=priority,
            owner_mode=owner_mode,
            owner=owner,
            by=admin,
        )


def tickets_of(account) -> list[Ticket]:
    with scopes_disabled():
        return list(
            Ticket.objects.filter(account=account).select_related(
                "conversation", "stage", "pipeline", "owner"
            )
        )


def ingest(inbox, **fields):
    to = address_of(inbox)
    inbound = spool(raw_mail(to=to, **fields), to)
    ingest_inbound(inbound)
    return inbound


def conversation_in(inbox, subject="Where is my order?", *, assignee=None) -> Conversation:
    with scopes_disabled():
        contact, _ = Contact.objects.get_or_create(
            account=inbox.account, email="carol@customer.example", defaults={"name": "Carol Customer"}
        )
        return Conversation.objects.create(
            account=inbox.account, inbox=inbox, contact=contact, subject=subject, assignee=assignee
        )


def ticket_for(conversation, pipeline, stage_, **fields) -> Ticket:
    with scopes_disabled():
        return Ticket.objects.create(
            account=conversation.account, conversation=conversation, pipeline=pipeline, stage=stage_, **fields
        )


def board_url(account) -> str:
    return reverse("tickets:board", args=[account.subdomain])


def move_url(ticket) -> str:
    return reverse("tickets:move", args=[ticket.account.subdomain, ticket.pk])


def thread_url(conversation) -> str:
    return reverse("inboxes:thread", args=[conversation.account.subdomain, conversation.pk])


def create_url(conversation) -> str:
    return reverse("tickets:create", args=[conversation.account.subdomain, conversation.pk])


def refreshed(obj):
    with scopes_disabled():
        obj.refresh_from_db()
    return obj


# --- opened by mail (C11, G3) ---


def test_mail_into_an_inbox_with_tickets_on_opens_one_ticket_with_the_defaults(inbox, admin, support):
    tickets_on(inbox, admin, stage_name="Waiting on us", priority="high")

    ingest(inbox)

    [ticket] = tickets_of(admin.account)
    assert ticket.pipeline == support
    assert ticket.stage == stage(support, "Waiting on us")
    assert ticket.priority == "high"
    assert ticket.owner is None
    assert ticket.closed_at is None
    assert ticket.conversation.subject == "Where is my order?"
    with scopes_disabled():
        assert AuditEntry.objects.filter(account=admin.account, action="ticket_opened").count() == 1


def test_a_second_message_in_the_conversation_opens_no_other_ticket(inbox, admin):
    tickets_on(inbox, admin)
    ingest(inbox)

    ingest(inbox, message_id="<raw2@customer.example>", headers="In-Reply-To: <raw1@customer.example>")

    [ticket] = tickets_of(admin.account)
    with scopes_disabled():
        assert ticket.conversation.messages.count() == 2


def test_the_same_message_ingested_twice_makes_one_ticket(inbox, admin):
    tickets_on(inbox, admin)
    inbound = ingest(inbox)

    ingest_inbound(inbound)
    ingest(inbox)

    assert len(tickets_of(admin.account)) == 1


def test_opening_the_ticket_again_for_the_same_conversation_keeps_the_first(inbox, admin):
    tickets_on(inbox, admin)
    ingest(inbox)
    [first] = tickets_of(admin.account)

    with scope(account=admin.account):
        again = open_ticket_for_new_conversation(first.conversation)

    assert again.pk == first.pk
    assert len(tickets_of(admin.account)) == 1


def test_with_tickets_off_mail_opens_no_ticket(inbox, admin):
    ingest(inbox)

    assert tickets_of(admin.account) == []


def test_with_tickets_turned_off_after_saving_mail_opens_no_ticket(inbox, admin, support):
    tickets_on(inbox, admin)
    with scope(account=admin.account):
        defaults = ticket_defaults_for(inbox)
        update_ticket_defaults(
            defaults,
            create_tickets=False,
            pipeline=support,
            stage=defaults.stage,
            priority="medium",
            owner_mode="nobody",
            owner=None,
            by=admin,
        )

    ingest(inbox)

    assert tickets_of(admin.account) == []


def test_owner_mode_conversation_owner_gives_the_ticket_to_the_conversations_assignee(inbox, admin, agent):
    tickets_on(inbox, admin, owner_mode="conversation_owner")
    conversation = conversation_in(inbox, assignee=agent)

    with scope(account=admin.account):
        ticket = open_ticket_for_new_conversation(conversation)

    assert ticket.owner == agent


def test_owner_mode_conversation_owner_leaves_an_unassigned_conversations_ticket_without_owner(inbox, admin):
    tickets_on(inbox, admin, owner_mode="conversation_owner")

    ingest(inbox)

    [ticket] = tickets_of(admin.account)
    assert ticket.conversation.assignee_id is None
    assert ticket.owner is None


def test_owner_mode_member_gives_the_ticket_to_the_chosen_member(inbox, admin, agent):
    tickets_on(inbox, admin, owner_mode="member", owner=agent)

    ingest(inbox)

    [ticket] = tickets_of(admin.account)
    assert ticket.owner == agent


def test_owner_mode_nobody_leaves_the_ticket_without_owner_even_when_assigned(inbox, admin, agent):
    tickets_on(inbox, admin, owner_mode="nobody")
    conversation = conversation_in(inbox, assignee=agent)

    with scope(account=admin.account):
        ticket = open_ticket_for_new_conversation(conversation)

    assert ticket.owner is None


# --- moving between stages (H4) ---


def test_moving_to_the_closed_stage_closes_the_conversation_and_back_reopens_it(inbox, admin, support):
    conversation = conversation_in(inbox)
    ticket = ticket_for(conversation, support, stage(support, "New"))

    with scope(account=admin.account):
        move_ticket(ticket, stage(support, "Closed"), by=admin)
    assert refreshed(conversation).status == "closed"
    assert refreshed(ticket).closed_at is not None

    with scope(account=admin.account):
        move_ticket(refreshed(ticket), stage(support, "Waiting on us"), by=admin)
    assert refreshed(conversation).status == "open"
    assert refreshed(ticket).closed_at is None
    with scopes_disabled():
        actions = list(AuditEntry.objects.filter(account=admin.account).values_list("action", flat=True))
    assert actions.count("ticket_moved") == 2
    assert actions.count("conversation_status_set") == 2


def test_a_stage_of_another_pipeline_is_refused(inbox, admin, support):
    onboarding = Pipeline.objects.create(account=admin.account, name="Onboarding")
    kick_off = Stage.objects.create(account=admin.account, pipeline=onboarding, name="Kick-off", position=0)
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))

    with scope(account=admin.account), pytest.raises(ValidationError) as refusal:
        move_ticket(ticket, kick_off, by=admin)

    assert refusal.value.message_dict == {
        "stage": ["“Kick-off” is not a stage of the pipeline “Support pipeline”. Choose one of its stages."]
    }
    assert refreshed(ticket).stage == stage(support, "New")


def test_a_stage_of_another_pipeline_posted_to_the_page_is_refused_with_the_reason(
    client, inbox, admin, support
):
    onboarding = Pipeline.objects.create(account=admin.account, name="Onboarding")
    kick_off = Stage.objects.create(account=admin.account, pipeline=onboarding, name="Kick-off", position=0)
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    client.force_login(admin.user)

    response = client.post(move_url(ticket), {"stage": kick_off.pk}, headers={"HX-Request": "true"})

    assert "is not a stage of the pipeline “Support pipeline”" in response.text
    assert refreshed(ticket).stage == stage(support, "New")


def test_a_stage_change_by_htmx_swaps_in_the_row_with_the_new_stage(client, inbox, admin, support):
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    waiting = stage(support, "Waiting on us")
    client.force_login(admin.user)

    response = client.post(move_url(ticket), {"stage": waiting.pk}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="ticket-{ticket.pk}">')
    assert f'<option value="{waiting.pk}" selected>Waiting on us</option>' in response.text
    assert "<html" not in response.text
    assert refreshed(ticket).stage == waiting


def test_a_plain_stage_change_redirects_back_to_the_page_it_came_from(client, inbox, admin, support):
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    client.force_login(admin.user)
    back = f"{board_url(admin.account)}?priority=medium"

    response = client.post(move_url(ticket), {"stage": stage(support, "Closed").pk, "next": back})

    assert response.status_code == 302
    assert response.url == back
    assert refreshed(ticket.conversation).status == "closed"


def test_a_plain_stage_change_never_redirects_off_the_tickets_page(client, inbox, admin, support):
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    client.force_login(admin.user)

    response = client.post(
        move_url(ticket), {"stage": stage(support, "Closed").pk, "next": "https://evil.example/"}
    )

    assert response.url == f"{board_url(admin.account)}?pipeline={support.pk}"


# --- tenancy and permissions (A2, B6) ---


def test_an_outsider_gets_404_for_another_accounts_ticket_and_it_stays(
    client, inbox, admin, support, outsider
):
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    client.force_login(outsider.user)

    response = client.post(
        reverse("tickets:move", args=[outsider.account.subdomain, ticket.pk]),
        {"stage": stage(support, "Closed").pk},
    )

    assert response.status_code == 404
    assert refreshed(ticket).stage == stage(support, "New")
    assert refreshed(ticket.conversation).status == "open"


def test_another_accounts_stage_answers_404_and_the_ticket_stays(client, inbox, admin, support, outsider):
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    with scopes_disabled():
        theirs = Pipeline.objects.get(account=outsider.account, is_default=True)
    client.force_login(admin.user)

    response = client.post(move_url(ticket), {"stage": stage(theirs, "Closed").pk})

    assert response.status_code == 404
    assert refreshed(ticket).stage == stage(support, "New")


def test_another_accounts_pipeline_answers_404(client, admin, outsider):
    with scopes_disabled():
        theirs = Pipeline.objects.get(account=outsider.account, is_default=True)
    client.force_login(admin.user)

    response = client.get(board_url(admin.account), {"pipeline": theirs.pk})

    assert response.status_code == 404


def test_an_outsider_gets_404_on_the_tickets_page_of_another_account(client, admin, outsider):
    client.force_login(outsider.user)

    assert client.get(board_url(admin.account)).status_code == 404


def test_an_outsider_cannot_create_a_ticket_for_another_accounts_conversation(client, inbox, admin, outsider):
    conversation = conversation_in(inbox)
    client.force_login(outsider.user)

    response = client.post(reverse("tickets:create", args=[outsider.account.subdomain, conversation.pk]))

    assert response.status_code == 404
    assert tickets_of(admin.account) == []


def restrict_to(inbox, admin, *members):
    with scope(account=admin.account):
        set_inbox_access(inbox, access="specific", members=members, by=admin)


def test_an_admin_off_a_restricted_inboxs_list_gets_403_on_stage_change(client, inbox, admin, agent, support):
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    restrict_to(inbox, admin, agent)
    client.force_login(admin.user)

    response = client.post(move_url(ticket), {"stage": stage(support, "Closed").pk})

    assert response.status_code == 403
    assert refreshed(ticket).stage == stage(support, "New")


def test_an_account_admin_off_a_restricted_inboxs_list_sees_the_stage_but_no_control(
    client, inbox, admin, agent, support
):
    lead = MembershipFactory(account=admin.account, permission="account_admin")
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    restrict_to(inbox, admin, agent)
    client.force_login(lead.user)

    page = client.get(board_url(admin.account)).text
    response = client.post(move_url(ticket), {"stage": stage(support, "Closed").pk})

    assert f'id="ticket-{ticket.pk}"' in page
    assert f'id="ticket-{ticket.pk}-stage"' not in page
    assert response.status_code == 403
    assert refreshed(ticket).stage == stage(support, "New")


def test_an_agent_off_a_restricted_inboxs_list_can_neither_see_nor_move_its_tickets(
    client, inbox, admin, agent, support
):
    # An agent off the list does not see the inbox at all (B6, RELIABILITY A4): 404, not 403.
    ticket = ticket_for(conversation_in(inbox), support, stage(support, "New"))
    restrict_to(inbox, admin, admin)
    client.force_login(agent.user)

    page = client.get(board_url(admin.account)).text
    response = client.post(move_url(ticket), {"stage": stage(support, "Closed").pk})

    assert f'id="ticket-{ticket.pk}"' not in page
    assert response.status_code == 404
    assert refreshed(ticket).stage == stage(support, "New")


def test_an_admin_off_a_restricted_inboxs_list_gets_403_on_create_ticket(client, inbox, admin, agent):
    conversation = conversation_in(inbox)
    restrict_to(inbox, admin, agent)
    client.force_login(admin.user)

    response = client.post(create_url(conversation))

    assert response.status_code == 403
    assert tickets_of(admin.account) == []


# --- the tickets page (H4) ---


def test_the_page_lists_the_default_pipelines_tickets_with_subject_contact_owner_priority(
    client, inbox, admin, agent, support
):
    conversation = conversation_in(inbox, "Broken widget")
    ticket = ticket_for(conversation, support, stage(support, "New"), owner=agent, priority="urgent")
    client.force_login(admin.user)

    response = client.get(board_url(admin.account))

    html = response.text
    row = html.split(f'<tr id="ticket-{ticket.pk}">', 1)[1].split("</tr>", 1)[0]
    assert f'href="{thread_url(conversation)}">Broken widget</a>' in row
    assert "Carol Customer" in row
    assert "Bob Agent" in row
    assert "Urgent" in row
    assert html.count("<h1>") == 1
    assert 'aria-current="page">Tickets</a>' in html


def test_the_page_shows_another_pipeline_by_its_id(client, inbox, admin, support):
    onboarding = Pipeline.objects.create(account=admin.account, name="Onboarding")
    kick_off = Stage.objects.create(account=admin.account, pipeline=onboarding, name="Kick-off", position=0)
    theirs = ticket_for(conversation_in(inbox, "Onboard me"), onboarding, kick_off)
    ours = ticket_for(conversation_in(inbox, "Help"), support, stage(support, "New"))
    client.force_login(admin.user)

    html = client.get(board_url(admin.account), {"pipeline": onboarding.pk}).text

    assert f'id="ticket-{theirs.pk}"' in html
    assert f'id="ticket-{ours.pk}"' not in html


def test_the_page_filters_by_owner_and_priority(client, inbox, admin, agent, support):
    new = stage(support, "New")
    mine = ticket_for(conversation_in(inbox, "Mine"), support, new, owner=admin, priority="low")
    bobs = ticket_for(conversation_in(inbox, "Bob's"), support, new, owner=agent, priority="high")
    nobodys = ticket_for(conversation_in(inbox, "Nobody's"), support, new, priority="high")
    client.force_login(admin.user)

    def shown(**query):
        html = client.get(board_url(admin.account), query).text
        return {t.pk for t in (mine, bobs, nobodys) if f'id="ticket-{t.pk}"' in html}

    assert shown() == {mine.pk, bobs.pk, nobodys.pk}
    assert shown(owner="me") == {mine.pk}
    assert shown(owner="none") == {nobodys.pk}
    assert shown(owner=str(agent.pk)) == {bobs.pk}
    assert shown(priority="high") == {bobs.pk, nobodys.pk}
    assert shown(owner="none", priority="low") == set()


def test_the_page_groups_tickets_by_stage_in_stage_order(client, inbox, admin, support):
    closed = ticket_for(conversation_in(inbox, "Done"), support, stage(support, "Closed"))
    new = ticket_for(conversation_in(inbox, "Fresh"), support, stage(support, "New"))
    client.force_login(admin.user)

    html = client.get(board_url(admin.account)).text

    assert html.index(f'id="ticket-{new.pk}"') < html.index(f'id="ticket-{closed.pk}"')
    assert '<th scope="rowgroup" colspan="6">New</th>' in html


def many_tickets(inbox, support, n):
    new = stage(support, "New")
    with scopes_disabled():
        contact, _ = Contact.objects.get_or_create(account=inbox.account, email="many@customer.example")
        conversations = Conversation.objects.bulk_create(
            Conversation(account=inbox.account, inbox=inbox, contact=contact, subject=f"Case {i}")
            for i in range(n)
        )
        now = timezone.now()
        return Ticket.objects.bulk_create(
            Ticket(
                account=inbox.account,
                conversation=c,
                pipeline=support,
                stage=new,
                created_at=now - timezone.timedelta(minutes=i),
            )
            for i, c in enumerate(conversations)
        )


def test_the_page_shows_50_tickets_and_pages_on_to_the_rest_without_repeats(client, inbox, admin, support):
    tickets = many_tickets(inbox, support, 53)
    client.force_login(admin.user)

    first = client.get(board_url(admin.account)).text
    cursor = first.split("after=", 1)[1].split('"', 1)[0]
    second = client.get(f"{board_url(admin.account)}?after={cursor}").text

    on_first = {t.pk for t in tickets if f'id="ticket-{t.pk}"' in first}
    on_second = {t.pk for t in tickets if f'id="ticket-{t.pk}"' in second}
    assert len(on_first) == 50
    assert on_first | on_second == {t.pk for t in tickets}
    assert not on_first & on_second
    assert "More tickets" not in second


def test_the_pages_query_count_does_not_grow_with_the_tickets_shown(
    client, inbox, admin, support, django_assert_num_queries
):
    client.force_login(admin.user)
    client.get(board_url(admin.account))  # the session remembers the account once
    many_tickets(inbox, support, 2)
    with django_assert_num_queries(10) as few:
        client.get(board_url(admin.account), {"owner": "", "priority": ""})

    many_tickets(inbox, support, 60)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(board_url(admin.account), {"owner": "", "priority": ""})
    assert response.text.count('<tr id="ticket-') == 50


# --- the ticket beside its conversation (C11, H4) ---


def test_the_thread_shows_its_ticket(client, inbox, admin, agent, support):
    conversation = conversation_in(inbox, "Broken widget")
    ticket_for(conversation, support, stage(support, "Waiting on us"), owner=agent, priority="high")
    client.force_login(admin.user)

    html = client.get(thread_url(conversation)).text

    panel = html.split('class="card ticket-panel"', 1)[1].split("</section>", 1)[0]
    assert "<dt>Pipeline</dt><dd>Support pipeline</dd>" in panel
    assert "<dt>Stage</dt><dd>Waiting on us</dd>" in panel
    # Chosen in the controls that change them (tests/tickets/test_ticket_controls.py).
    assert '<option value="high" selected>High</option>' in panel
    assert f'<option value="{agent.pk}" selected>Bob Agent</option>' in panel
    assert f'href="{board_url(admin.account)}?pipeline={support.pk}"' in panel
    assert "Create ticket" not in panel


def test_a_thread_without_ticket_offers_create_ticket(client, inbox, admin):
    conversation = conversation_in(inbox)
    client.force_login(admin.user)

    response = client.get(thread_url(conversation))

    assert response.status_code == 200
    assert f'action="{create_url(conversation)}"' in response.text
    assert ">Create ticket</button>" in response.text


def test_create_ticket_makes_one_with_the_inboxs_defaults_and_returns_to_the_thread(
    client, inbox, admin, support
):
    conversation = conversation_in(inbox)
    client.force_login(admin.user)

    response = client.post(create_url(conversation), follow=True)
    client.post(create_url(conversation))

    assert response.redirect_chain == [(thread_url(conversation), 302)]
    assert "This conversation is now a ticket." in response.text
    [ticket] = tickets_of(admin.account)
    assert (ticket.conversation, ticket.stage, ticket.priority) == (
        conversation,
        stage(support, "New"),
        "medium",
    )


def test_create_ticket_by_service_uses_the_saved_defaults(inbox, admin, agent, support):
    tickets_on(
        inbox, admin, stage_name="Waiting on contact", priority="low", owner_mode="member", owner=agent
    )
    conversation = conversation_in(inbox)

    with scope(account=admin.account):
        ticket = create_ticket(conversation, by=admin)

    assert (ticket.stage.name, ticket.priority, ticket.owner) == ("Waiting on contact", "low", agent)
    with scopes_disabled():
        assert TicketDefaults.objects.get(inbox=inbox).create_tickets is True


def test_a_tickets_priority_and_owner_changes_are_on_the_conversations_activity(inbox, admin, agent, support):
    conversation = conversation_in(inbox)
    ticket = ticket_for(conversation, support, stage(support, "New"), priority="low")

    with scope(account=admin.account):
        set_ticket_priority(ticket, "urgent", by=admin)
        set_ticket_priority(ticket, "urgent", by=admin)  # no change: no entry
        set_ticket_owner(ticket, agent, by=admin)
        set_ticket_owner(ticket, None, by=admin)
        said = [describe(entry) for entry in conversation.events.order_by("pk")]

    assert said == [
        "Alice Admin set its ticket's priority to Urgent (was Low)",
        "Alice Admin gave its ticket to Bob Agent",
        "Alice Admin left its ticket without an owner",
    ]
