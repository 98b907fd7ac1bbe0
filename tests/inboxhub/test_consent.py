"""Consent before joining an account (issue 16 point 2): someone who has a login is invited, never added."""

import re
from collections.abc import Callable

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from inboxhub.celery import app as celery_app
from inboxhub.models import Invitation, Membership, User
from inboxhub.services import accept_invitation, add_member, decline_invitation
from tests.concurrency import at_once
from tests.factories import make_account

MEMBERS = "/a/alpha/settings/members/"


def signed_in_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def post(client: Client, page: str, url: str, data: dict | None = None, **extra):
    """POST as the browser does: the CSRF token comes from the page the form is on."""
    client.get(page)
    return client.post(
        url, {**(data or {}), "csrfmiddlewaretoken": client.cookies["csrftoken"].value}, **extra
    )


def add(client: Client, email: str, **data):
    fields = {"full_name": "Cee Typed", "email": email, "seat": "service_hub", "permission": "agent"}
    return post(client, MEMBERS, f"{MEMBERS}add/", {"how": "invite", **fields, **data}, follow=True)


def flash(response) -> str:
    return re.search(r'role="status">\s*<p class="flash[^"]*">(.*?)</p>', response.text, re.S)[1]


def pending_rows(response) -> list[str]:
    return re.findall(r'<tr class="pending-row">.*?</tr>', response.text, re.S)


def members_count(response) -> str:
    return re.search(r"\d+ members? in Alpha", response.text)[0]


def membership(account, email: str) -> Membership | None:
    with scopes_disabled():
        return Membership.objects.filter(account=account, user__email=email).first()


def the_invitation() -> Invitation:
    with scopes_disabled():
        return Invitation.objects.get()


def pending() -> bool:
    with scopes_disabled():
        return Invitation.objects.exists()


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)  # delivered here, as without REDIS_URL


def test_adding_an_email_with_a_login_neither_adds_them_nor_shows_their_name(admin, outsider):
    response = add(signed_in_client(admin.user), "charlie@bravo.example")

    assert response.status_code == 200
    assert "Charlie Outsider" not in response.text
    assert "Bravo" not in response.text
    assert membership(admin.account, "charlie@bravo.example") is None
    [row] = pending_rows(response)
    assert "Cee Typed" in row and "charlie@bravo.example" in row and "Invited" in row


def test_the_admin_gets_the_same_answer_whether_or_not_the_email_has_a_login(admin, outsider):
    client = signed_in_client(admin.user)

    known = add(client, "charlie@bravo.example")
    unknown = add(client, "nobody-yet@elsewhere.example")

    assert known.redirect_chain == unknown.redirect_chain == [(MEMBERS, 302)]
    assert flash(known) == "Cee Typed is invited: a link is on its way to charlie@bravo.example."
    assert flash(unknown) == "Cee Typed is invited: a link is on its way to nobody-yet@elsewhere.example."
    assert members_count(known) == "2 members in Alpha"
    assert members_count(unknown) == "3 members in Alpha"
    # Both wait in one list, in one shape, down to the page's source: only the email typed differs.
    shapes = {
        row.replace(email, "EMAIL")
        for row in pending_rows(unknown)
        for email in ("charlie@bravo.example", "nobody-yet@elsewhere.example")
        if email in row
    }
    assert len(shapes) == 1


def withdraw(client: Client, row: str):
    """Press the row's Withdraw button."""
    url = re.search(r'action="([^"]+)"', row)[1]
    fields = dict(re.findall(r'<input type="hidden" name="(email)" value="([^"]+)"', row))
    return post(client, MEMBERS, url, fields, follow=True)


def test_withdrawing_either_kind_of_invitation_reads_the_same_and_frees_the_email(admin, outsider):
    client = signed_in_client(admin.user)
    add(client, "charlie@bravo.example")
    page = add(client, "nobody-yet@elsewhere.example")

    answers = [flash(withdraw(client, row)) for row in pending_rows(page)]

    assert sorted(answers) == [
        "The invitation to charlie@bravo.example was withdrawn.",
        "The invitation to nobody-yet@elsewhere.example was withdrawn.",
    ]
    # The login made for the new person went with its invitation; Charlie keeps his own.
    with scopes_disabled():
        assert not User.objects.filter(email="nobody-yet@elsewhere.example").exists()
        assert User.objects.filter(email="charlie@bravo.example").exists()


def test_withdraw_by_email_never_reaches_a_joined_member_nor_another_accounts_invitation(
    admin, agent, outsider
):
    bravo_admin = signed_in_client(outsider.user)
    post(
        bravo_admin,
        "/a/bravo/settings/members/",
        "/a/bravo/settings/members/add/",
        {
            "how": "invite",
            "full_name": "Dee",
            "email": "dee@new.example",
            "seat": "free",
            "permission": "agent",
        },
    )
    client = signed_in_client(admin.user)

    for email in ("bob@alpha.example", "dee@new.example", "alice@alpha.example", ""):
        response = post(client, MEMBERS, f"{MEMBERS}pending/withdraw/", {"email": email})
        assert response.status_code == 404, email

    assert membership(admin.account, "bob@alpha.example") is not None
    assert membership(outsider.account, "dee@new.example") is not None


def test_setting_a_password_for_an_email_with_a_login_leaves_their_password_and_invites_them(admin, outsider):
    response = add(
        signed_in_client(admin.user), "charlie@bravo.example", how="password", password="saffron-meadow-77"
    )

    assert flash(response) == (
        "Cee Typed was added to Alpha. If charlie@bravo.example already has an InboxHub login, "
        "they were sent an invitation instead and keep their own password."
    )
    outsider.user.refresh_from_db()
    assert not outsider.user.check_password("saffron-meadow-77")
    assert membership(admin.account, "charlie@bravo.example") is None


def test_the_account_is_not_in_their_list_until_they_accept(admin, outsider):
    add(signed_in_client(admin.user), "charlie@bravo.example")
    charlie = signed_in_client(outsider.user)

    accounts = charlie.get("/accounts/")

    assert "/a/alpha/" not in accounts.text
    assert "You have 1 invitation to join an account." in accounts.text
    assert charlie.get("/a/alpha/inbox/").status_code == 404


def test_accepting_while_signed_in_joins_with_the_seat_and_permission_chosen(admin, outsider):
    add(signed_in_client(admin.user), "charlie@bravo.example", permission="account_admin")
    charlie = signed_in_client(outsider.user)
    invitation = the_invitation()

    response = post(charlie, "/invitations/", f"/invitations/{invitation.pk}/accept/", follow=True)

    assert response.redirect_chain[0] == ("/a/alpha/inbox/", 302)
    assert "You joined Alpha." in response.text
    member = membership(admin.account, "charlie@bravo.example")
    assert (member.seat, member.permission) == ("service_hub", "account_admin")
    assert "/a/alpha/" in charlie.get("/accounts/").text
    assert not pending()
    outsider.user.refresh_from_db()
    assert outsider.user.full_name == "Charlie Outsider"


def test_declining_leaves_them_outside_the_account(admin, outsider):
    add(signed_in_client(admin.user), "charlie@bravo.example")
    charlie = signed_in_client(outsider.user)
    invitation = the_invitation()

    response = post(charlie, "/invitations/", f"/invitations/{invitation.pk}/decline/", follow=True)

    assert "You declined the invitation to Alpha." in response.text
    assert membership(admin.account, "charlie@bravo.example") is None
    assert charlie.get("/a/alpha/inbox/").status_code == 404


def test_nobody_else_can_accept_an_invitation(admin, agent, outsider):
    add(signed_in_client(admin.user), "charlie@bravo.example")
    invitation = the_invitation()

    response = post(signed_in_client(agent.user), "/invitations/", f"/invitations/{invitation.pk}/accept/")

    assert response.status_code == 404
    assert membership(admin.account, "charlie@bravo.example") is None
    assert pending()


def test_accepting_without_a_csrf_token_is_refused(admin, outsider):
    add(signed_in_client(admin.user), "charlie@bravo.example")
    invitation = the_invitation()

    response = signed_in_client(outsider.user).post(f"/invitations/{invitation.pk}/accept/")

    assert response.status_code == 403
    assert membership(admin.account, "charlie@bravo.example") is None


def test_the_invitation_mail_sends_them_to_sign_in_and_answer(
    admin, outsider, mailoutbox, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        add(signed_in_client(admin.user), "charlie@bravo.example")

    [mail] = mailoutbox
    assert mail.to == ["charlie@bravo.example"]
    assert mail.subject == "Alice Admin invited you to Alpha on InboxHub"
    assert "http://testserver/invitations/" in mail.body
    assert "Charlie" not in mail.body


def test_an_admin_withdraws_an_invitation_and_it_can_no_longer_be_accepted(admin, outsider):
    client = signed_in_client(admin.user)
    add(client, "charlie@bravo.example")
    invitation = the_invitation()

    response = post(client, MEMBERS, f"{MEMBERS}invitations/{invitation.pk}/withdraw/", follow=True)

    assert "The invitation to charlie@bravo.example was withdrawn." in response.text
    assert pending_rows(response) == []
    accepted = post(signed_in_client(outsider.user), "/invitations/", f"/invitations/{invitation.pk}/accept/")
    assert accepted.status_code == 404
    assert membership(admin.account, "charlie@bravo.example") is None


def test_an_outsider_gets_404_withdrawing_and_the_invitation_stays(admin, outsider):
    add(signed_in_client(admin.user), "dee@elsewhere.example")
    add(signed_in_client(admin.user), "charlie@bravo.example")
    invitation = the_invitation()
    charlie = signed_in_client(outsider.user)

    response = post(charlie, "/accounts/", f"{MEMBERS}invitations/{invitation.pk}/withdraw/")
    in_own_account = post(
        charlie, "/accounts/", f"/a/bravo/settings/members/invitations/{invitation.pk}/withdraw/"
    )

    assert response.status_code == in_own_account.status_code == 404
    assert pending()


def answer_at_once(invitation_id: int, answers: list[str]) -> list[str]:
    """Each answer from a database connection of its own, released together (a double click); each
    holds the invitation as its page loaded it, before either answered. What each met, sorted."""

    def answer(how: str) -> Callable[[], str]:
        with scopes_disabled():
            invitation = Invitation.objects.select_related("account", "user").get(pk=invitation_id)

        @scopes_disabled()
        def call() -> str:
            if how == "accept":
                return f"joined {accept_invitation(invitation, user=invitation.user).account}"
            decline_invitation(invitation, user=invitation.user)
            return "declined"

        return call

    outcomes = at_once(*(answer(how) for how in answers))
    return sorted(
        outcome if isinstance(outcome, str) else " ".join(getattr(outcome, "messages", [repr(outcome)]))
        for outcome in outcomes
    )


def invite_outsider(transactional_db) -> Invitation:
    admin = make_account("alpha")
    outsider = make_account("bravo")
    with scope(account=admin.account):
        return add_member(admin.account, email=outsider.user.email, full_name="Cee", password=None, by=admin)


def test_accepting_twice_at_once_joins_once_and_both_answers_say_so(transactional_db):
    invitation = invite_outsider(transactional_db)

    outcomes = answer_at_once(invitation.pk, ["accept", "accept"])

    assert outcomes == [f"joined {invitation.account}"] * 2
    with scopes_disabled():
        assert Membership.objects.filter(account=invitation.account, user=invitation.user).count() == 1
        assert not Invitation.objects.exists()


def test_accepting_and_declining_at_once_leaves_one_clear_answer(transactional_db):
    invitation = invite_outsider(transactional_db)

    outcomes = answer_at_once(invitation.pk, ["accept", "decline"])

    with scopes_disabled():
        joined = Membership.objects.filter(account=invitation.account, user=invitation.user).exists()
        assert not Invitation.objects.exists()
    if joined:  # accept came first; the decline found nothing left to answer
        assert outcomes == ["declined", f"joined {invitation.account}"]
    else:
        assert outcomes == ["This invitation was declined or withdrawn.", "declined"]


TEAMS = "/a/alpha/settings/teams/"


def picker_choices(client: Client) -> str:
    """What the team form offers as members (one of the pickers that name members)."""
    return client.get(TEAMS).text


@pytest.mark.parametrize("how", ["invite", "password"])
def test_a_new_person_waits_as_invited_and_in_no_picker_like_someone_with_a_login(admin, outsider, how):
    client = signed_in_client(admin.user)
    fields = {"how": how, "password": "saffron-meadow-77"} if how == "password" else {"how": how}

    add(client, "charlie@bravo.example", **fields)
    page = add(client, "nobody-yet@elsewhere.example", **fields)

    shapes = {
        row.replace(email, "EMAIL")
        for row in pending_rows(page)
        for email in ("charlie@bravo.example", "nobody-yet@elsewhere.example")
        if email in row
    }
    assert len(pending_rows(page)) == 2 and len(shapes) == 1
    offered = picker_choices(client)
    assert "nobody-yet@elsewhere.example" not in offered and "charlie@bravo.example" not in offered


def test_a_person_added_with_a_password_joins_by_signing_in(admin):
    client = signed_in_client(admin.user)
    add(client, "dee@new.example", how="password", password="saffron-meadow-77")
    assert "dee@new.example" not in picker_choices(client)

    dee = Client()
    signed_in = dee.post("/login/", {"username": "dee@new.example", "password": "saffron-meadow-77"})

    assert signed_in.status_code == 302
    assert membership(admin.account, "dee@new.example").joined_at is not None
    assert "dee@new.example" in picker_choices(client)
    assert pending_rows(client.get(MEMBERS)) == []
