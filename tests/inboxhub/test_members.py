"""Settings › Members: super admins add, change and remove members (A4)."""

import re
import threading
from html import escape

import pytest
from django.db import connection
from django.test import Client
from django_scopes import scope, scopes_disabled

from inboxhub.celery import app as celery_app
from inboxhub.models import AuditEntry, Membership, User
from inboxhub.services import change_member
from tests.factories import PASSWORD, MembershipFactory, TeamFactory, make_account

NEW_PASSWORD = "saffron-meadow-77"
MEMBERS = "/a/alpha/settings/members/"


def add(client, **data):
    fields = {"full_name": "Dee Dev", "email": "dee@alpha.example", "seat": "free", "permission": "agent"}
    fields.update(data)
    return client.post(f"{MEMBERS}add/", fields)


def edit_url(member) -> str:
    return f"/a/{member.account.subdomain}/settings/members/{member.pk}/"


def member_row(response, member_id: int) -> str:
    return re.search(rf'<tr id="member-{member_id}">.*?</tr>', response.text, re.S)[0]


def pending_row(response, email: str) -> str:
    rows = re.findall(r'<tr class="pending-row">.*?</tr>', response.text, re.S)
    [row] = [row for row in rows if email in row]
    return row


def membership(account, email: str) -> Membership | None:
    with scopes_disabled():
        return Membership.objects.filter(account=account, user__email=email).select_related("user").first()


def audit_actions(account) -> list[str]:
    with scopes_disabled():
        return list(
            AuditEntry.objects.filter(account=account).order_by("pk").values_list("action", flat=True)
        )


@pytest.fixture
def signed_in(client, admin):
    client.force_login(admin.user)
    return client


# --- Adding ---------------------------------------------------------------------


def test_a_member_added_with_a_password_can_log_in(signed_in, admin):
    response = add(signed_in, how="password", password=NEW_PASSWORD, seat="service_hub")

    assert response["Location"] == MEMBERS
    member = membership(admin.account, "dee@alpha.example")
    assert (member.seat, member.permission, member.user.full_name) == ("service_hub", "agent", "Dee Dev")
    fresh = Client()
    fresh.post("/login/", {"username": "dee@alpha.example", "password": NEW_PASSWORD})
    assert fresh.get("/a/alpha/inbox/").status_code == 200


def test_adding_a_member_says_so_on_the_members_page(signed_in, admin):
    response = signed_in.post(
        f"{MEMBERS}add/",
        {
            "full_name": "Dee Dev",
            "email": "dee@alpha.example",
            "seat": "free",
            "permission": "agent",
            "how": "password",
            "password": NEW_PASSWORD,
        },
        follow=True,
    )

    assert "Dee Dev was added to Alpha." in response.text
    assert "dee@alpha.example" in response.text


def test_a_member_added_with_an_invite_gets_the_link_and_shows_as_invited(
    signed_in, admin, mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)  # delivered here, as without REDIS_URL
    with django_capture_on_commit_callbacks(execute=True):
        response = add(signed_in, how="invite")
    page = signed_in.get(MEMBERS)

    member = membership(admin.account, "dee@alpha.example")
    assert response["Location"] == MEMBERS
    assert "Dee Dev is invited: a link is on its way to dee@alpha.example." in page.text
    assert "Invited" in pending_row(page, "dee@alpha.example")
    assert "Invited" not in member_row(page, admin.pk)
    [mail] = mailoutbox
    assert mail.to == ["dee@alpha.example"]
    assert mail.subject == "Alice Admin invited you to Alpha on InboxHub"
    assert re.search(r"http://testserver/invite/[\w-]+/[\w-]+/", mail.body)
    assert not member.user.has_usable_password()


def test_adding_someone_already_in_the_account_is_refused_whatever_the_case(
    signed_in, admin, agent, snapshot
):
    before = snapshot()

    response = add(signed_in, email="BOB@alpha.example", how="invite")

    assert response.status_code == 400
    assert "This person is already a member of this account." in response.text
    assert snapshot() == before


def test_adding_a_member_with_a_weak_password_is_refused(signed_in, admin, snapshot):
    before = snapshot()

    response = add(signed_in, how="password", password="password")

    assert response.status_code == 400
    assert "This password is too common." in response.text
    assert snapshot() == before


def test_choosing_a_password_without_typing_one_is_refused(signed_in, admin, snapshot):
    before = snapshot()

    response = add(signed_in, how="password", password="")

    assert "Enter a password, or choose to send an invite link." in response.text
    assert snapshot() == before


def test_adding_a_person_from_another_account_keeps_their_own_password_and_only_invites_them(
    signed_in, admin, outsider
):
    add(signed_in, email="charlie@bravo.example", how="password", password=NEW_PASSWORD)

    outsider.user.refresh_from_db()
    assert outsider.user.check_password(PASSWORD)
    # They join only by accepting, signed in (tests/inboxhub/test_consent.py).
    assert membership(admin.account, "charlie@bravo.example") is None
    assert membership(outsider.account, "charlie@bravo.example").permission == "super_admin"


def test_adding_a_member_writes_an_audit_entry(signed_in, admin):
    add(signed_in, how="invite")

    with scopes_disabled():
        entry = AuditEntry.objects.filter(account=admin.account).latest("pk")
    assert (entry.action, entry.actor_id) == ("member_added", admin.pk)
    assert entry.details == {"seat": "free", "permission": "agent"}


def test_extra_fields_posted_when_adding_are_ignored(signed_in, admin, outsider):
    add(
        signed_in,
        how="invite",
        account=outsider.account.pk,
        username="root",
        is_staff="on",
        is_superuser="on",
    )

    member = membership(admin.account, "dee@alpha.example")
    assert member.username == "dee"
    assert not member.user.is_staff and not member.user.is_superuser
    assert membership(outsider.account, "dee@alpha.example") is None


# --- Changing -------------------------------------------------------------------


def test_a_super_admin_changes_a_members_seat_and_permission(signed_in, agent):
    response = signed_in.post(
        edit_url(agent), {"seat": "sales_hub", "permission": "account_admin"}, follow=True
    )

    agent.refresh_from_db()
    assert (agent.seat, agent.permission) == ("sales_hub", "account_admin")
    assert "Saved Bob Agent&#x27;s seat and permission." in response.text
    assert audit_actions(agent.account)[-1] == "member_changed"


def test_extra_fields_posted_when_changing_a_member_are_ignored(signed_in, agent, outsider):
    signed_in.post(
        edit_url(agent),
        {
            "seat": "free",
            "permission": "agent",
            "account": outsider.account.pk,
            "username": "root",
            "user": 1,
        },
    )

    with scopes_disabled():
        agent = Membership.objects.select_related("user").get(pk=agent.pk)
    assert agent.account.subdomain == "alpha"
    assert agent.username == "bob"
    assert agent.user.email == "bob@alpha.example"


def test_the_last_super_admin_cannot_be_demoted(signed_in, admin, snapshot):
    before = snapshot()

    response = signed_in.post(edit_url(admin), {"seat": "free", "permission": "account_admin"})

    assert response.status_code == 400
    assert "The account needs at least one super admin." in response.text
    assert snapshot() == before


def test_a_super_admin_can_be_demoted_while_another_remains(signed_in, admin):
    second = MembershipFactory(account=admin.account, permission="super_admin")

    signed_in.post(edit_url(second), {"seat": second.seat, "permission": "agent"})

    second.refresh_from_db()
    assert second.permission == "agent"


def test_two_super_admins_demoting_each_other_at_once_leave_one(transactional_db):
    alice = make_account("alpha")
    bob = MembershipFactory(account=alice.account, permission="super_admin")
    start = threading.Barrier(2)
    outcomes = []

    def demote(target_id: int, actor_id: int) -> None:
        try:
            with scopes_disabled():
                target = Membership.objects.select_related("account").get(pk=target_id)
                actor = Membership.objects.select_related("account").get(pk=actor_id)
            start.wait()
            with scope(account=target.account):
                change_member(target, seat=target.seat, permission="agent", by=actor)
            outcomes.append("demoted")
        except Exception as exc:  # noqa: BLE001 - the refusal is what this test counts
            outcomes.append(" ".join(getattr(exc, "messages", [repr(exc)])))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(bob.pk, alice.pk)),
        threading.Thread(target=demote, args=(alice.pk, bob.pk)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["The account needs at least one super admin.", "demoted"]
    with scopes_disabled():
        assert Membership.objects.filter(account=alice.account, permission="super_admin").count() == 1


def test_a_super_admin_who_demotes_themselves_lands_on_a_page_they_may_see(signed_in, admin):
    MembershipFactory(account=admin.account, permission="super_admin")

    response = signed_in.post(edit_url(admin), {"seat": admin.seat, "permission": "agent"}, follow=True)

    assert response.redirect_chain[-1] == ("/a/alpha/inbox/", 302)
    assert response.status_code == 200
    assert "Saved Alice Admin&#x27;s seat and permission." in response.text


# --- Removing -------------------------------------------------------------------


def test_a_super_admin_who_removes_themselves_lands_outside_the_account(signed_in, admin):
    MembershipFactory(account=admin.account, permission="super_admin")

    response = signed_in.post(f"{edit_url(admin)}remove/", follow=True)

    assert response.redirect_chain[-1] == ("/accounts/", 302)
    assert response.status_code == 200
    assert "Alice Admin was removed from Alpha." in response.text


def test_a_super_admin_removes_a_member_who_keeps_their_login(signed_in, admin, agent):
    team = TeamFactory(account=admin.account)
    team.members.add(agent)

    response = signed_in.post(f"{edit_url(agent)}remove/", follow=True)

    assert "Bob Agent was removed from Alpha." in response.text
    assert membership(admin.account, "bob@alpha.example") is None
    assert User.objects.filter(email="bob@alpha.example").exists()
    with scopes_disabled():
        assert not team.members.exists()
    assert audit_actions(admin.account)[-1] == "member_removed"


def test_a_removed_member_gets_404_on_the_account(client, admin, agent):
    Client().force_login(admin.user)
    admin_client = Client()
    admin_client.force_login(admin.user)
    admin_client.post(f"{edit_url(agent)}remove/")
    client.force_login(agent.user)

    assert client.get("/a/alpha/inbox/").status_code == 404


def test_the_last_super_admin_cannot_be_removed(signed_in, admin, snapshot):
    before = snapshot()

    response = signed_in.post(f"{edit_url(admin)}remove/", follow=True)

    assert response.redirect_chain == [(MEMBERS, 302)]
    assert "The last super admin cannot be removed." in response.text
    assert snapshot() == before


# --- Who may ---------------------------------------------------------------------


def settings_urls(admin, agent) -> list[str]:
    team = TeamFactory(account=admin.account, name="Support")
    base = "/a/alpha/settings"
    return [
        f"{base}/members/",
        f"{base}/members/add/",
        f"{base}/members/{agent.pk}/",
        f"{base}/members/{agent.pk}/remove/",
        f"{base}/teams/",
        f"{base}/teams/{team.pk}/",
        f"{base}/teams/{team.pk}/delete/",
    ]


@pytest.mark.parametrize("level", ["account_admin", "agent"])
def test_only_super_admins_may_open_or_post_to_members_and_teams(client, admin, agent, snapshot, level):
    someone = MembershipFactory(account=admin.account, permission=level)
    urls = settings_urls(admin, agent)
    client.force_login(someone.user)
    before = snapshot()

    for url in urls:
        assert client.get(url).status_code in (403, 405), url
        assert client.post(url, {"name": "X", "seat": "free", "permission": "super_admin"}).status_code in (
            403,
            405,
        ), url
    assert snapshot() == before


def test_an_account_admin_sees_settings_without_members_and_teams(client, account_admin):
    client.force_login(account_admin.user)

    response = client.get("/a/alpha/settings/")

    assert response.status_code == 200
    assert "Members, seats and teams are managed by super admins." in response.text
    assert "/settings/members/" not in response.text


def test_an_agent_may_not_open_settings(client, agent):
    client.force_login(agent.user)

    assert client.get("/a/alpha/settings/").status_code == 403


def test_a_super_admin_opening_settings_lands_on_members(signed_in):
    assert signed_in.get("/a/alpha/settings/")["Location"] == MEMBERS


def test_an_outsider_gets_404_on_a_member_and_nothing_changes(client, agent, outsider, snapshot):
    client.force_login(outsider.user)
    before = snapshot()

    assert client.get(edit_url(agent)).status_code == 404
    assert client.post(edit_url(agent), {"seat": "free", "permission": "super_admin"}).status_code == 404
    assert client.post(f"{edit_url(agent)}remove/").status_code == 404
    assert client.post(f"{MEMBERS}add/", {"email": "x@evil.example", "how": "invite"}).status_code == 404
    assert snapshot() == before


# --- The page -------------------------------------------------------------------


def test_the_members_page_lists_names_emails_seats_permissions_and_teams(signed_in, admin, agent):
    TeamFactory(account=admin.account, name="Support").members.add(agent)

    response = signed_in.get(MEMBERS)
    row = member_row(response, agent.pk)

    assert "2 members in Alpha" in response.text
    assert "Bob Agent" in row and "bob@alpha.example" in row
    assert "Service Hub" in row and "Agent" in row and "Support" in row


def test_member_names_are_escaped_on_the_members_page(signed_in, admin):
    MembershipFactory(account=admin.account, user__full_name='<img src=x onerror="alert(1)">')

    response = signed_in.get(MEMBERS)

    assert "<img src=x" not in response.text
    assert escape('<img src=x onerror="alert(1)">') in response.text


def test_the_members_page_takes_the_same_queries_however_many_members(
    client, admin, django_assert_num_queries
):
    client.force_login(admin.user)
    client.get(MEMBERS)  # the first visit remembers the account in the session

    def page_queries() -> int:
        with django_assert_num_queries(9) as captured:  # pending invitations are one more
            assert client.get(MEMBERS).status_code == 200
        return len(captured.captured_queries)

    team = TeamFactory(account=admin.account)
    team.members.add(*(MembershipFactory(account=admin.account) for _ in range(2)))
    few = page_queries()
    team.members.add(*(MembershipFactory(account=admin.account) for _ in range(8)))

    assert page_queries() == few
