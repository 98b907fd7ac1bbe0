"""Settings › Inbox › Inboxes: selector, Actions, rename, channels, their switch (B1–B4, B8, F2, A2, A8)."""

import pytest
from django_scopes import scopes_disabled

from channels_conn.models import Channel
from inboxhub.models import Account, Membership
from tests.factories import make_account
from tests.inboxes.inbox_settings_helpers import (
    audit_actions,
    default_inbox_of,
    inbox_names,
    make_inbox,
    make_member,
    settings_url,
)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def inbox(admin):
    return default_inbox_of(admin.account)


@pytest.fixture
def channel(inbox):
    return Channel.objects.select_related("fallback_address").get(inbox=inbox)


@pytest.fixture
def account_admin(admin):
    return make_member(admin.account, "Lee Lead", permission=Membership.Permission.ACCOUNT_ADMIN)


@pytest.fixture
def as_admin(client, admin):
    client.force_login(admin.user)
    return client


def rename_url(inbox):
    return settings_url("rename", inbox.account, inbox.pk)


def switch_url(channel):
    return settings_url("switch_channel", channel.account, channel.inbox_id, channel.pk)


def name_of(inbox) -> str:
    with scopes_disabled():
        inbox.refresh_from_db(fields=["name"])
    return inbox.name


def enabled(channel) -> bool:
    with scopes_disabled():
        channel.refresh_from_db(fields=["enabled"])
    return channel.enabled


# --- the page ---


def test_the_inbox_settings_address_opens_the_default_inbox(as_admin, admin, inbox):
    make_inbox(admin, "Billing")

    r = as_admin.get(settings_url("index", admin.account))

    assert r.status_code == 302
    assert r["Location"] == settings_url("detail", admin.account, inbox.pk)


def test_the_page_lists_the_fallback_channel_with_its_address_switch_and_edit_link(as_admin, inbox, channel):
    r = as_admin.get(settings_url("detail", inbox.account, inbox.pk))

    assert r.status_code == 200
    assert "<h1>Inboxes</h1>" in r.text
    row = r.text.split(f'id="channel-{channel.pk}"')[1].split("</li>")[0]
    assert "Fallback email address" in row
    assert channel.fallback_address.address in row
    assert 'role="switch" aria-checked="true"' in row
    assert f'href="/a/alpha/settings/inboxes/{inbox.pk}/fallback/"' in row


def test_the_selector_lists_every_inbox_with_the_current_one_selected(as_admin, admin, inbox):
    billing = make_inbox(admin, "Billing")

    r = as_admin.get(settings_url("detail", admin.account, billing.pk))

    assert f'<option value="{billing.pk}" selected>Billing</option>' in r.text
    assert f'<option value="{inbox.pk}" >Inbox (default)</option>' in r.text


def test_the_selector_without_javascript_goes_to_the_chosen_inbox_on_the_same_tab(as_admin, admin):
    billing = make_inbox(admin, "Billing")

    r = as_admin.get(settings_url("switch", admin.account), {"inbox": billing.pk, "tab": "access"})

    assert r["Location"] == settings_url("access", admin.account, billing.pk)


def test_the_selector_given_another_accounts_inbox_goes_back_to_the_list(as_admin, admin, outsider):
    theirs = default_inbox_of(outsider.account)

    r = as_admin.get(settings_url("switch", admin.account), {"inbox": theirs.pk})

    assert r["Location"] == settings_url("index", admin.account)


@pytest.mark.parametrize("value", ["", "abc", "²", "99999999999999999999", "-1"])
def test_the_selector_given_a_malformed_id_goes_back_to_the_list(as_admin, admin, value):
    r = as_admin.get(settings_url("switch", admin.account), {"inbox": value})

    assert r["Location"] == settings_url("index", admin.account)


def test_the_connect_a_channel_picker_shows_fallback_connected_and_the_others_coming(as_admin, inbox):
    r = as_admin.get(settings_url("detail", inbox.account, inbox.pk))

    picker = r.text.split('id="connect-channel-dialog"')[1].split("</dialog>")[0]
    assert "Fallback email address" in picker and "Connected" in picker
    coming = [item.split("</li>")[0] for item in picker.split('<li class="is-coming">')[1:]]
    assert [("Not available yet" in item, "<button" in item, "<a " in item) for item in coming] == [
        (True, False, False)
    ] * 2


def test_the_slack_section_says_it_is_not_available_and_offers_no_button(as_admin, inbox):
    r = as_admin.get(settings_url("detail", inbox.account, inbox.pk))

    slack = r.text.split('id="slack-title"')[1].split("</section>")[0]
    assert "Not available yet" in slack
    assert "<button" not in slack and "<a " not in slack


def test_the_create_action_links_to_the_wizard_on_a_professional_account(as_admin, inbox):
    r = as_admin.get(settings_url("detail", inbox.account, inbox.pk))

    assert f'href="{settings_url("new", inbox.account)}">Create new inbox</a>' in r.text


@pytest.mark.parametrize("tier", [Account.Tier.FREE, Account.Tier.STARTER])
def test_a_lower_tier_sees_the_create_action_disabled_with_the_reason(client, tier):
    owner = make_account(tier=tier)
    inbox = default_inbox_of(owner.account)
    client.force_login(owner.user)

    r = client.get(settings_url("detail", owner.account, inbox.pk))

    assert 'disabled aria-describedby="create-inbox-reason">Create new inbox</button>' in r.text
    assert f"Your {owner.account.get_tier_display()} plan includes one inbox." in r.text
    assert settings_url("new", owner.account) not in r.text


def test_the_settings_sidebar_links_to_inboxes_for_an_account_admin(client, account_admin):
    client.force_login(account_admin.user)

    r = client.get(f"/a/{account_admin.account.subdomain}/settings/")

    assert f'href="{settings_url("index", account_admin.account)}"' in r.text


def test_an_account_admin_opens_the_inbox_settings(client, account_admin):
    inbox = default_inbox_of(account_admin.account)
    client.force_login(account_admin.user)

    assert client.get(settings_url("detail", inbox.account, inbox.pk)).status_code == 200


def test_inbox_names_are_escaped_on_the_settings_page(as_admin, admin):
    make_inbox(admin, "<img src=x onerror=alert(1)>")
    inbox = default_inbox_of(admin.account)

    r = as_admin.get(settings_url("detail", admin.account, inbox.pk))

    assert "<img src=x onerror" not in r.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in r.text


# --- rename (B2) ---


def test_renaming_redirects_to_the_page_with_the_new_name(as_admin, inbox):
    r = as_admin.post(rename_url(inbox), {"name": "  Support desk  "}, follow=True)

    assert name_of(inbox) == "Support desk"
    assert "The inbox is now called “Support desk”." in r.text
    assert audit_actions(inbox.account)[-1] == "inbox_renamed"


def test_renaming_through_htmx_reloads_the_page(as_admin, inbox):
    r = as_admin.post(rename_url(inbox), {"name": "Support desk"}, headers=HTMX)

    assert r["HX-Redirect"] == settings_url("detail", inbox.account, inbox.pk)
    assert name_of(inbox) == "Support desk"


def test_renaming_from_the_access_tab_comes_back_to_it(as_admin, inbox):
    r = as_admin.post(rename_url(inbox), {"name": "Support desk", "tab": "access"})

    assert r["Location"] == settings_url("access", inbox.account, inbox.pk)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the inbox a name."),
        ("   ", "Give the inbox a name."),
        ("x" * 101, "Inbox names are at most 100 characters."),
        ("BILLING", "Another inbox already has this name."),
        ("  billing ", "Another inbox already has this name."),
    ],
    ids=["empty", "whitespace-only", "101-characters", "duplicate-other-case", "duplicate-padded"],
)
def test_a_bad_name_comes_back_in_the_dialog_with_the_reason(as_admin, admin, inbox, name, message):
    make_inbox(admin, "Billing")

    r = as_admin.post(rename_url(inbox), {"name": name}, headers=HTMX)

    assert r.status_code == 200
    assert r.text.lstrip().startswith('<form id="rename-form"')
    assert message in r.text
    assert name_of(inbox) == "Inbox"


def test_a_bad_name_without_javascript_reopens_the_dialog_with_the_reason(as_admin, inbox):
    r = as_admin.post(rename_url(inbox), {"name": "   "})

    assert r.status_code == 400
    assert 'id="rename-dialog" aria-labelledby="rename-dialog-title" open' in r.text
    assert "Give the inbox a name." in r.text
    assert name_of(inbox) == "Inbox"


def test_a_name_of_exactly_100_characters_is_kept(as_admin, inbox):
    as_admin.post(rename_url(inbox), {"name": "y" * 100})

    assert name_of(inbox) == "y" * 100


def test_renaming_to_its_own_name_in_another_case_is_allowed(as_admin, inbox):
    as_admin.post(rename_url(inbox), {"name": "INBOX"})

    assert name_of(inbox) == "INBOX"


def test_extra_fields_posted_with_a_rename_are_ignored(as_admin, admin, inbox, outsider):
    billing = make_inbox(admin, "Billing")

    as_admin.post(
        rename_url(billing),
        {"name": "Sales", "is_default": "true", "account": outsider.account.pk, "access": "x"},
    )

    with scopes_disabled():
        billing.refresh_from_db()
    assert (billing.name, billing.is_default, billing.account_id, billing.access) == (
        "Sales",
        False,
        inbox.account_id,
        "everyone",
    )


# --- the channel switch (F2) ---


def test_turning_the_channel_off_swaps_in_its_row_marked_off(as_admin, channel):
    r = as_admin.post(switch_url(channel), {"enabled": "false"}, headers=HTMX)

    assert r.status_code == 200
    assert r.text.lstrip().startswith(f'<li class="channel-row is-off" id="channel-{channel.pk}"')
    assert 'role="switch" aria-checked="false"' in r.text
    assert "Off: mail sent to this address is refused" in r.text
    assert enabled(channel) is False
    assert audit_actions(channel.account)[-1] == "channel_turned_off"


def test_turning_the_channel_back_on_swaps_in_its_row_marked_on(as_admin, channel):
    as_admin.post(switch_url(channel), {"enabled": "false"}, headers=HTMX)

    r = as_admin.post(switch_url(channel), {"enabled": "true"}, headers=HTMX)

    assert 'role="switch" aria-checked="true"' in r.text
    assert enabled(channel) is True
    assert audit_actions(channel.account)[-1] == "channel_turned_on"


def test_turning_off_asks_first_and_explains_that_mail_is_refused(as_admin, inbox, channel):
    r = as_admin.get(settings_url("detail", inbox.account, inbox.pk))

    confirm = r.text.split(f'id="channel-{channel.pk}-off"')[1].split("</dialog>")[0]
    assert f'data-open-dialog="channel-{channel.pk}-off"' in r.text
    assert (
        f"While it is off, mail sent to <strong>{channel.fallback_address.address}</strong> is refused"
        in confirm
    )
    assert '<input type="hidden" name="enabled" value="false">' in confirm


def test_the_switch_without_javascript_redirects_with_a_message(as_admin, channel):
    r = as_admin.post(switch_url(channel), {"enabled": "false"}, follow=True)

    assert "Fallback email address is off: mail sent to it is refused." in r.text
    assert enabled(channel) is False


def test_a_switch_post_without_a_state_changes_nothing(as_admin, channel):
    r = as_admin.post(switch_url(channel), {})

    assert r.status_code == 400
    assert enabled(channel) is True


def test_a_channel_of_another_inbox_answers_404_under_this_inbox(as_admin, admin, channel):
    billing = make_inbox(admin, "Billing")

    r = as_admin.post(
        settings_url("switch_channel", admin.account, billing.pk, channel.pk), {"enabled": "false"}
    )

    assert r.status_code == 404
    assert enabled(channel) is True


# --- who may open the page (B8, A2) ---


def test_an_agent_gets_403_on_every_inbox_settings_page_and_nothing_changes(client, agent, inbox, channel):
    client.force_login(agent.user)
    account = agent.account

    for url in (
        settings_url("index", account),
        settings_url("switch", account),
        settings_url("detail", account, inbox.pk),
        settings_url("access", account, inbox.pk),
        settings_url("new", account),
    ):
        assert client.get(url).status_code == 403, url
    for url, data in (
        (rename_url(inbox), {"name": "Taken"}),
        (switch_url(channel), {"enabled": "false"}),
        (settings_url("access", account, inbox.pk), {"access": "specific", "members": [agent.pk]}),
        (settings_url("new", account), {"step": "3", "name": "New", "access": "everyone", "then": "later"}),
    ):
        assert client.post(url, data).status_code == 403, url

    assert name_of(inbox) == "Inbox" and enabled(channel) is True
    assert inbox_names(account) == ["Inbox"]


def test_an_outsider_gets_404_and_the_inbox_and_channel_stay_as_they_were(client, outsider, inbox, channel):
    client.force_login(outsider.user)

    assert client.get(settings_url("detail", inbox.account, inbox.pk)).status_code == 404
    assert client.post(rename_url(inbox), {"name": "Taken"}, headers=HTMX).status_code == 404
    assert client.post(switch_url(channel), {"enabled": "false"}, headers=HTMX).status_code == 404
    assert name_of(inbox) == "Inbox" and enabled(channel) is True


def test_an_outsider_naming_account_a_inbox_under_their_own_subdomain_gets_404(client, outsider, inbox):
    client.force_login(outsider.user)

    r = client.post(f"/a/{outsider.account.subdomain}/settings/inboxes/{inbox.pk}/rename/", {"name": "Taken"})

    assert r.status_code == 404
    assert name_of(inbox) == "Inbox"
