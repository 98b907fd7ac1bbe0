"""The Tickets tab (C11): treat incoming conversations as tickets; pipeline, stage, priority, owner."""

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from inboxhub.models import AuditEntry
from routing.models import AssignmentRule
from tests.factories import MembershipFactory
from tests.routing.helpers import controls, is_checked, selected
from tickets.models import Pipeline, Stage, TicketDefaults


@pytest.fixture
def inbox(admin):
    with scope(account=admin.account):
        return admin.account.inboxes.get(is_default=True)


@pytest.fixture
def support(admin) -> Pipeline:
    return Pipeline.objects.get(account=admin.account, is_default=True)


@pytest.fixture
def onboarding(admin) -> Pipeline:
    pipeline = Pipeline.objects.create(account=admin.account, name="Onboarding")
    for position, name in enumerate(["Kick-off", "Setup", "Live"]):
        Stage.objects.create(account=admin.account, pipeline=pipeline, name=name, position=position)
    return pipeline


def stage(pipeline: Pipeline, name: str) -> Stage:
    with scopes_disabled():
        return pipeline.stages.get(name=name)


def url(inbox) -> str:
    return reverse("ticket_settings:edit", args=[inbox.account.subdomain, inbox.pk])


def stages_url(inbox) -> str:
    return reverse("ticket_settings:stages", args=[inbox.account.subdomain, inbox.pk])


def saved(inbox) -> TicketDefaults | None:
    with scopes_disabled():
        return TicketDefaults.objects.filter(inbox=inbox).select_related("pipeline", "stage", "owner").first()


def summary(html: str) -> str:
    """The saved defaults shown beside Edit ticket."""
    return html.split('class="ticket-summary"', 1)[1].split("</dl>", 1)[0]


def stage_ids(pipeline: Pipeline, *names: str) -> list[str]:
    return [str(stage(pipeline, name).pk) for name in names]


def post(client, inbox, pipeline, stage_, **data):
    form = {"pipeline": pipeline.pk, "stage": stage_.pk, "priority": "medium", "owner_mode": "nobody"}
    form.update(data)
    return client.post(url(inbox), form)


def test_a_new_inbox_starts_off_in_the_default_pipelines_first_stage_with_no_owner(
    client, admin, inbox, support
):
    client.force_login(admin.user)

    response = client.get(url(inbox))

    assert response.status_code == 200
    html = response.text
    assert controls(html)["id_create_tickets"]["role"] == "switch"
    assert not is_checked(html, "id_create_tickets")
    assert selected(html, "id_pipeline") == [str(support.pk)]
    assert selected(html, "id_stage") == [str(stage(support, "New").pk)]
    assert selected(html, "id_priority") == ["medium"]
    assert is_checked(html, "id_owner_mode_2")  # No owner: automatic assignment is off
    assert saved(inbox) is None


def test_with_automatic_assignment_on_the_owner_defaults_to_the_conversations_owner(client, admin, inbox):
    with scopes_disabled():
        AssignmentRule.objects.create(account=admin.account, inbox=inbox, enabled=True)
    client.force_login(admin.user)

    html = client.get(url(inbox)).text

    assert is_checked(html, "id_owner_mode_0")
    assert "A conversation left unassigned opens its ticket without an owner." in html


def test_every_setting_is_saved_and_kept(client, admin, inbox, onboarding, agent):
    client.force_login(admin.user)

    response = post(
        client,
        inbox,
        onboarding,
        stage(onboarding, "Setup"),
        create_tickets="on",
        priority="urgent",
        owner_mode="member",
        owner=agent.pk,
    )

    assert response.status_code == 302
    defaults = saved(inbox)
    assert defaults.create_tickets is True
    assert (defaults.pipeline, defaults.stage.name) == (onboarding, "Setup")
    assert (defaults.priority, defaults.owner_mode, defaults.owner) == ("urgent", "member", agent)
    html = client.get(response["Location"]).text
    assert "Ticket settings for Inbox were saved." in html
    assert is_checked(html, "id_create_tickets")
    assert selected(html, "id_pipeline") == [str(onboarding.pk)]
    assert selected(html, "id_stage") == [str(stage(onboarding, "Setup").pk)]
    assert [v for v, _ in controls(html)["id_stage"]["options"]] == stage_ids(
        onboarding, "Kick-off", "Setup", "Live"
    )
    assert selected(html, "id_priority") == ["urgent"]
    assert selected(html, "id_owner") == [str(agent.pk)]
    assert "Bob Agent" in summary(html)
    assert "Urgent" in summary(html) and "Setup" in summary(html)


def test_conversation_owner_is_kept_and_clears_a_chosen_member(client, admin, inbox, support, agent):
    client.force_login(admin.user)

    post(client, inbox, support, stage(support, "New"), owner_mode="conversation_owner", owner=agent.pk)

    defaults = saved(inbox)
    assert (defaults.owner_mode, defaults.owner) == ("conversation_owner", None)


def test_switching_tickets_off_is_kept(client, admin, inbox, support):
    client.force_login(admin.user)
    post(client, inbox, support, stage(support, "New"), create_tickets="on")

    post(client, inbox, support, stage(support, "New"))

    assert saved(inbox).create_tickets is False


def test_a_stage_of_another_pipeline_is_refused_and_nothing_is_saved(
    client, admin, inbox, support, onboarding
):
    client.force_login(admin.user)

    response = post(client, inbox, support, stage(onboarding, "Live"), create_tickets="on")

    assert response.status_code == 400
    assert (
        "“Live” is not a stage of the pipeline “Support pipeline”. Choose one of its stages." in response.text
    )
    # The panel opens again, offering the chosen pipeline's stages.
    assert 'id="ticket-panel" class="side-sheet" aria-labelledby="ticket-panel-title" open' in response.text
    assert [v for v, _ in controls(response.text)["id_stage"]["options"]] == stage_ids(
        support, "New", "Waiting on contact", "Waiting on us", "Closed"
    )
    assert saved(inbox) is None


def test_member_mode_without_a_member_is_refused(client, admin, inbox, support):
    client.force_login(admin.user)

    response = post(client, inbox, support, stage(support, "New"), owner_mode="member")

    assert response.status_code == 400
    assert "Choose the member who owns new tickets." in response.text
    assert saved(inbox) is None


def test_another_accounts_pipeline_is_refused_and_nothing_is_saved(client, admin, inbox, outsider):
    with scopes_disabled():
        theirs = Pipeline.objects.get(account=outsider.account)
    client.force_login(admin.user)

    response = post(client, inbox, theirs, stage(theirs, "New"), create_tickets="on")

    assert response.status_code == 400
    assert "Select a valid choice" in response.text
    assert saved(inbox) is None


def test_another_accounts_stage_is_refused_and_nothing_is_saved(client, admin, inbox, support, outsider):
    with scopes_disabled():
        theirs = Pipeline.objects.get(account=outsider.account)
    client.force_login(admin.user)

    response = post(client, inbox, support, stage(theirs, "New"), create_tickets="on")

    assert response.status_code == 400
    assert saved(inbox) is None


def test_another_accounts_member_as_owner_is_refused_and_nothing_is_saved(
    client, admin, inbox, support, outsider
):
    client.force_login(admin.user)

    response = post(client, inbox, support, stage(support, "New"), owner_mode="member", owner=outsider.pk)

    assert response.status_code == 400
    assert saved(inbox) is None


def test_extra_fields_in_the_post_are_ignored(client, admin, inbox, support, outsider):
    client.force_login(admin.user)

    post(client, inbox, support, stage(support, "New"), account=outsider.account.pk, updated_at="2001-01-01")

    defaults = saved(inbox)
    assert (defaults.account_id, defaults.inbox_id) == (admin.account.pk, inbox.pk)
    assert defaults.updated_at.year > 2001


def test_the_stages_endpoint_returns_the_stage_select_of_the_picked_pipeline(
    client, admin, inbox, onboarding
):
    client.force_login(admin.user)

    response = client.get(stages_url(inbox), {"pipeline": onboarding.pk}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div class="field" id="stage-field">')
    assert "<html" not in response.text
    options = controls(response.text)["id_stage"]["options"]
    assert [v for v, _ in options] == stage_ids(onboarding, "Kick-off", "Setup", "Live")


def test_the_stages_endpoint_answers_404_for_another_accounts_pipeline(client, admin, inbox, outsider):
    with scopes_disabled():
        theirs = Pipeline.objects.get(account=outsider.account)
    client.force_login(admin.user)

    assert client.get(stages_url(inbox), {"pipeline": theirs.pk}).status_code == 404
    assert client.get(stages_url(inbox), {"pipeline": "nonsense"}).status_code == 404


def test_without_htmx_the_show_stages_button_shows_the_picked_pipelines_stages_and_saves_nothing(
    client, admin, inbox, support, onboarding
):
    client.force_login(admin.user)

    response = post(client, inbox, onboarding, stage(support, "New"), show_stages="1")

    assert response.status_code == 200
    assert selected(response.text, "id_pipeline") == [str(onboarding.pk)]
    assert [v for v, _ in controls(response.text)["id_stage"]["options"]] == stage_ids(
        onboarding, "Kick-off", "Setup", "Live"
    )
    assert "is not a stage of" not in response.text
    assert saved(inbox) is None


def test_a_free_seat_admin_may_change_ticket_settings(client, admin, inbox, support):
    free_admin = MembershipFactory(account=admin.account, seat="free", permission="account_admin")
    client.force_login(free_admin.user)

    response = post(client, inbox, support, stage(support, "New"), create_tickets="on")

    assert response.status_code == 302
    assert saved(inbox).create_tickets is True


def test_an_agent_gets_403(client, agent, inbox, support):
    client.force_login(agent.user)

    assert client.get(url(inbox)).status_code == 403
    assert client.get(stages_url(inbox)).status_code == 403
    assert post(client, inbox, support, stage(support, "New"), create_tickets="on").status_code == 403
    assert saved(inbox) is None


def test_an_outsider_gets_404_and_the_defaults_stay_as_they_were(client, admin, inbox, support, outsider):
    client.force_login(admin.user)
    post(client, inbox, support, stage(support, "New"), create_tickets="on", priority="high")
    client.force_login(outsider.user)

    assert client.get(url(inbox)).status_code == 404
    assert client.get(stages_url(inbox)).status_code == 404
    assert post(client, inbox, support, stage(support, "New"), priority="low").status_code == 404
    defaults = saved(inbox)
    assert (defaults.create_tickets, defaults.priority) == (True, "high")


def test_saving_writes_an_audit_row(client, admin, inbox, support):
    client.force_login(admin.user)

    post(client, inbox, support, stage(support, "Waiting on us"), create_tickets="on", priority="high")

    with scopes_disabled():
        entry = AuditEntry.objects.get(account=admin.account, action="ticket_defaults_updated")
    assert entry.actor == admin
    assert entry.details["priority"] == "high"
    assert entry.details["stage"] == stage(support, "Waiting on us").pk
