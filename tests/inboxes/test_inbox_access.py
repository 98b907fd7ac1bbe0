"""The Access tab (B5, B6, E2) and the agent pages that respect it (RELIABILITY A4, A2)."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from inboxhub.models import Membership
from tests.inboxes.helpers import attachment, parsed, receive
from tests.inboxes.inbox_settings_helpers import (
    access_list,
    audit_actions,
    default_inbox_of,
    make_inbox,
    make_member,
    make_team,
    settings_url,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin.user)
    return client


def access_url(inbox):
    return settings_url("access", inbox.account, inbox.pk)


def test_every_inbox_starts_available_to_everyone(as_admin, admin):
    inbox = default_inbox_of(admin.account)

    r = as_admin.get(access_url(inbox))

    assert r.status_code == 200
    assert '<input type="radio" name="access" value="everyone" id="id_access_0" required checked>' in r.text
    assert access_list(inbox) == ("everyone", set(), set())


def test_restricting_to_a_user_and_a_team_is_saved_and_shown_checked(as_admin, admin, agent):
    inbox = default_inbox_of(admin.account)
    support = make_team(admin.account, "Support", agent)

    r = as_admin.post(access_url(inbox), {"access": "specific", "members": [admin.pk], "teams": [support.pk]})

    assert r.status_code == 302
    assert access_list(inbox) == ("specific", {admin.pk}, {support.pk})
    page = as_admin.get(access_url(inbox)).text
    assert f'name="teams" value="{support.pk}" checked' in page
    assert f'name="members" value="{admin.pk}" checked' in page
    assert f'name="members" value="{agent.pk}">' in page
    assert audit_actions(admin.account)[-1] == "inbox_access_set"


def test_saving_access_says_so(as_admin, admin):
    inbox = default_inbox_of(admin.account)

    r = as_admin.post(access_url(inbox), {"access": "specific", "members": [admin.pk]}, follow=True)

    assert "Access to “Inbox” was saved." in r.text


def test_making_it_available_to_everyone_again_clears_the_list(as_admin, admin, agent):
    inbox = make_inbox(admin, "Billing", members=[agent])

    as_admin.post(access_url(inbox), {"access": "everyone", "members": [agent.pk]})

    assert access_list(inbox) == ("everyone", set(), set())


def test_specific_access_with_nobody_chosen_is_refused(as_admin, admin):
    inbox = default_inbox_of(admin.account)

    r = as_admin.post(access_url(inbox), {"access": "specific"})

    assert r.status_code == 400
    assert "Choose at least one user or team, or make the inbox available to everyone." in r.text
    assert access_list(inbox) == ("everyone", set(), set())


def test_an_unknown_access_value_is_refused(as_admin, admin):
    inbox = default_inbox_of(admin.account)

    r = as_admin.post(access_url(inbox), {"access": "nobody", "members": [admin.pk]})

    assert r.status_code == 400
    assert access_list(inbox) == ("everyone", set(), set())


def test_another_accounts_member_in_the_post_is_refused_and_nothing_is_saved(as_admin, admin, outsider):
    inbox = default_inbox_of(admin.account)

    r = as_admin.post(access_url(inbox), {"access": "specific", "members": [admin.pk, outsider.pk]})

    assert r.status_code == 400
    assert "Choose users of this account only." in r.text
    assert access_list(inbox) == ("everyone", set(), set())


def test_another_accounts_team_in_the_post_is_refused_and_nothing_is_saved(as_admin, admin, outsider):
    inbox = default_inbox_of(admin.account)
    theirs = make_team(outsider.account, "Their team", outsider)

    r = as_admin.post(access_url(inbox), {"access": "specific", "members": [admin.pk], "teams": [theirs.pk]})

    assert r.status_code == 400
    assert "Choose teams of this account only." in r.text
    assert access_list(inbox) == ("everyone", set(), set())
    assert "Their team" not in r.text


@pytest.mark.parametrize("value", ["99999999999999999999", "abc", "-1"])
def test_a_malformed_member_id_is_refused_and_nothing_is_saved(as_admin, admin, value):
    inbox = default_inbox_of(admin.account)

    r = as_admin.post(access_url(inbox), {"access": "specific", "members": [admin.pk, value]})

    assert r.status_code == 400
    assert access_list(inbox) == ("everyone", set(), set())


def test_the_picker_lists_only_this_accounts_members_and_teams(as_admin, admin, agent, outsider):
    make_team(admin.account, "Support", agent)
    make_team(outsider.account, "Bravo team", outsider)

    r = as_admin.get(access_url(default_inbox_of(admin.account)))

    assert "Bob Agent" in r.text and "Support" in r.text
    assert "Charlie Outsider" not in r.text and "Bravo team" not in r.text


def test_the_page_explains_that_admins_off_the_list_only_see_the_inbox(as_admin, admin, agent):
    inbox = make_inbox(admin, "Billing", members=[agent])

    r = as_admin.get(access_url(inbox))

    assert "Super admins and account admins who are not on the list still see the inbox" in r.text
    assert "You are not on this list, so you see “Billing” read-only." in r.text


def test_an_agent_gets_403_on_the_access_tab_and_nothing_changes(client, agent):
    inbox = default_inbox_of(agent.account)
    client.force_login(agent.user)

    assert client.get(access_url(inbox)).status_code == 403
    assert client.post(access_url(inbox), {"access": "specific", "members": [agent.pk]}).status_code == 403
    assert access_list(inbox) == ("everyone", set(), set())


def test_an_outsider_gets_404_and_the_access_list_is_unchanged(client, admin, outsider):
    inbox = default_inbox_of(admin.account)
    client.force_login(outsider.user)

    assert client.get(access_url(inbox)).status_code == 404
    assert client.post(access_url(inbox), {"access": "specific", "members": [outsider.pk]}).status_code == 404
    own = f"/a/{outsider.account.subdomain}/settings/inboxes/{inbox.pk}/access/"
    assert client.post(own, {"access": "specific", "members": [outsider.pk]}).status_code == 404
    assert access_list(inbox) == ("everyone", set(), set())


# --- the agent pages follow the list at once (RELIABILITY A4, B6) ---


@pytest.fixture
def restricted(admin, agent):
    """Billing, restricted to Sam; it holds one conversation with an attachment."""
    sam = make_member(admin.account, "Sam Someone")
    inbox = make_inbox(admin, "Billing", members=[sam])
    message = receive(inbox, parsed(subject="Refund please", attachments=[attachment()]))
    return inbox, message


def agent_urls(inbox, message) -> list[str]:
    sub = inbox.account.subdomain
    with scopes_disabled():
        attachment_id = message.attachments.get().pk
    return [
        reverse("inboxes:inbox", args=[sub, inbox.pk]),
        reverse("inboxes:thread", args=[sub, message.conversation_id]),
        reverse("inboxes:attachment", args=[sub, attachment_id]),
    ]


def test_an_agent_off_the_list_gets_404_on_the_inboxs_list_thread_and_attachments(client, agent, restricted):
    inbox, message = restricted
    client.force_login(agent.user)

    assert [client.get(url).status_code for url in agent_urls(inbox, message)] == [404, 404, 404]


def test_an_agent_added_through_a_team_opens_them_at_once(client, admin, agent, restricted):
    inbox, message = restricted
    team = make_team(admin.account, "Billing team", agent)
    client.force_login(admin.user)
    client.post(access_url(inbox), {"access": "specific", "teams": [team.pk]})
    client.force_login(agent.user)

    assert [client.get(url).status_code for url in agent_urls(inbox, message)] == [200, 200, 200]


def test_an_agent_removed_from_the_list_loses_the_pages_at_once(client, admin, agent):
    inbox = make_inbox(admin, "Billing", members=[agent])
    message = receive(inbox, parsed(subject="Refund please", attachments=[attachment()]))
    client.force_login(agent.user)
    assert client.get(agent_urls(inbox, message)[1]).status_code == 200

    client.force_login(admin.user)
    client.post(access_url(inbox), {"access": "specific", "members": [admin.pk]})
    client.force_login(agent.user)

    assert [client.get(url).status_code for url in agent_urls(inbox, message)] == [404, 404, 404]


def test_an_account_admin_off_the_list_still_sees_the_inbox_and_its_thread(client, admin, restricted):
    inbox, message = restricted
    lee = make_member(admin.account, "Lee Lead", permission=Membership.Permission.ACCOUNT_ADMIN)
    client.force_login(lee.user)

    assert [client.get(url).status_code for url in agent_urls(inbox, message)] == [200, 200, 200]


def test_the_inbox_sidebar_lists_only_the_inboxes_an_agent_can_see(client, admin, agent, restricted):
    make_inbox(admin, "Mine", members=[agent])
    client.force_login(agent.user)

    r = client.get(reverse("inboxes:index", args=[admin.account.subdomain]))

    sidebar = r.text.split('aria-label="Inboxes"')[1].split("</nav>")[0]
    assert '>Inbox <span class="count">' in sidebar and '>Mine <span class="count">' in sidebar
    assert "Billing" not in sidebar


def test_the_contact_page_leaves_out_messages_of_inboxes_the_agent_cannot_see(
    client, admin, agent, restricted
):
    inbox, message = restricted
    receive(default_inbox_of(admin.account), parsed(subject="Open question"))
    client.force_login(agent.user)

    r = client.get(
        reverse("contacts:detail", args=[admin.account.subdomain, message.conversation.contact_id])
    )

    assert "Open question" in r.text
    assert "Refund please" not in r.text
