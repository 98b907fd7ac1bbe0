"""Log in, log out, passwords, invitations and the request hardening around them (A9, rows 23-27)."""

import re
from concurrent.futures import ThreadPoolExecutor
from html import escape

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from inboxhub.models import User
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "saffron-meadow-77"
WRONG_LOGIN = "Please enter a correct email and password. Note that both fields may be case-sensitive."


def log_in(client, email: str, password: str = PASSWORD, **extra):
    return client.post("/login/", {"username": email, "password": password}, **extra)


def logged_in_as(client) -> str | None:
    """The email of whoever the client's session belongs to, as the next page sees it."""
    response = client.get("/accounts/")
    return response.context["user"].email if response.status_code == 200 else None


def without_csrf_tokens(response) -> str:
    """The page with its per-response CSRF tokens blanked, to compare two answers."""
    return re.sub(r'(csrftoken": "|csrfmiddlewaretoken" value=")[^"]+', r"\1", response.text)


def uid(user) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


# --- Log in and out ---------------------------------------------------------------


def test_logging_in_with_email_and_password_lands_on_the_inbox(client, admin):
    response = log_in(client, "alice@alpha.example", follow=True)

    assert response.redirect_chain[-1] == ("/a/alpha/inbox/", 302)
    assert logged_in_as(client) == "alice@alpha.example"


def test_logging_in_ignores_the_case_of_the_email(client, admin):
    log_in(client, "Alice@ALPHA.example")

    assert logged_in_as(client) == "alice@alpha.example"


def test_a_wrong_password_is_refused_with_a_message(client, admin):
    response = log_in(client, "alice@alpha.example", "not-the-password")

    assert response.status_code == 200
    assert escape(WRONG_LOGIN) in response.text
    assert logged_in_as(client) is None


def test_an_unknown_email_gets_the_same_message_as_a_wrong_password(client, admin):
    response = log_in(client, "nobody@alpha.example", "not-the-password")

    assert escape(WRONG_LOGIN) in response.text


@pytest.mark.parametrize(
    "target", ["//evil.com", "https://evil.com", "https://evil.com/a/alpha/", "///evil.com", "/\\evil.com"]
)
def test_a_next_pointing_to_another_site_stays_on_our_host(client, admin, target):
    response = client.post(
        "/login/", {"username": "alice@alpha.example", "password": PASSWORD, "next": target}
    )

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_next_on_our_host_is_followed_after_logging_in(client, admin):
    response = client.post(
        "/login/?next=/a/alpha/settings/teams/", {"username": "alice@alpha.example", "password": PASSWORD}
    )

    assert response["Location"] == "/a/alpha/settings/teams/"


def test_logging_out_by_get_is_refused_and_keeps_the_session(client, admin):
    client.force_login(admin.user)

    response = client.get("/logout/")

    assert response.status_code == 405
    assert logged_in_as(client) == "alice@alpha.example"


def test_logging_out_by_post_ends_the_session(client, admin):
    client.force_login(admin.user)

    response = client.post("/logout/")

    assert response["Location"] == "/login/"
    assert logged_in_as(client) is None


# --- Passwords --------------------------------------------------------------------


def test_changing_the_password_signs_out_the_other_sessions_but_not_this_one(admin):
    laptop, phone = Client(), Client()
    laptop.force_login(admin.user)
    phone.force_login(admin.user)

    response = laptop.post(
        "/password/change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response["Location"] == "/password/change/done/"
    assert logged_in_as(laptop) == "alice@alpha.example"
    assert logged_in_as(phone) is None
    assert phone.get("/a/alpha/inbox/")["Location"] == "/login/?next=/a/alpha/inbox/"


def test_a_password_reset_answers_the_same_whether_or_not_the_email_exists(client, admin, mailoutbox):
    known = client.post("/password/reset/", {"email": "alice@alpha.example"}, follow=True)
    unknown = client.post("/password/reset/", {"email": "nobody@alpha.example"}, follow=True)

    assert known.redirect_chain == unknown.redirect_chain == [("/password/reset/sent/", 302)]
    assert without_csrf_tokens(known) == without_csrf_tokens(unknown)
    assert [m.to for m in mailoutbox] == [["alice@alpha.example"]]


def test_a_password_reset_email_carries_a_link_that_sets_a_new_password(client, admin, mailoutbox):
    client.post("/password/reset/", {"email": "ALICE@alpha.example"})
    link = re.search(r"http://testserver(/password/reset/\S+/)", mailoutbox[0].body)[1]

    form = client.get(link, follow=True)
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert done["Location"] == "/password/reset/complete/"
    admin.user.refresh_from_db()
    assert admin.user.check_password(NEW_PASSWORD)
    assert client.get(link).context["validlink"] is False


def bad_tokens(user) -> list[str]:
    good = default_token_generator.make_token(user)
    return [
        "%20",
        "%09",
        "bogus-token",
        good.upper(),
        good.swapcase(),
        good[:-1],
        "set-password",
        "0-0",
    ]


@pytest.mark.parametrize("kind", ["invite", "password/reset"])
def test_an_empty_token_is_not_found(client, admin, kind):
    response = client.get(f"/{kind}/{uid(admin.user)}//")

    assert response.status_code == 404


@pytest.mark.parametrize("kind", ["invite", "password/reset"])
def test_blank_bogus_or_case_varied_tokens_never_set_a_password_nor_log_in(client, admin, kind):
    expected = {
        "invite": "This invite link is no longer valid",
        "password/reset": "This link has expired",
    }[kind]
    for token in bad_tokens(admin.user):
        url = f"/{kind}/{uid(admin.user)}/{token}/"
        shown = client.get(url, follow=True)
        posted = client.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True)

        for response in (shown, posted):
            assert response.status_code in (200, 404), (token, response.status_code)
            if response.status_code == 200:
                assert expected in response.text, token
        assert logged_in_as(client) is None, token
    admin.user.refresh_from_db()
    assert admin.user.check_password(PASSWORD)


def test_a_token_for_another_person_does_not_open_their_invite(client, admin, agent):
    token = default_token_generator.make_token(agent.user)

    response = client.get(f"/invite/{uid(admin.user)}/{token}/", follow=True)

    assert "This invite link is no longer valid" in response.text
    assert logged_in_as(client) is None


def invite_link(client, admin, mailoutbox, on_commit) -> str:
    """Invite Ivy through the Members page as the admin; the link her invite carries, once delivered."""
    client.force_login(admin.user)
    # The invite leaves through a task after the request's commit; without REDIS_URL it runs in place.
    with on_commit(execute=True):
        client.post(
            "/a/alpha/settings/members/add/",
            {
                "full_name": "Ivy Invited",
                "email": "ivy@alpha.example",
                "seat": "free",
                "permission": "agent",
                "how": "invite",
            },
        )
    client.post("/logout/")
    return re.search(r"http://testserver(/invite/\S+/)", mailoutbox[0].body)[1]


def test_an_invite_link_lets_the_member_choose_a_password_and_lands_logged_in(
    client, admin, mailoutbox, django_capture_on_commit_callbacks
):
    link = invite_link(client, admin, mailoutbox, django_capture_on_commit_callbacks)

    form = client.get(link, follow=True)
    joined = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    assert "Set your password" in form.text
    assert joined.redirect_chain[-1] == ("/a/alpha/inbox/", 302)
    assert logged_in_as(client) == "ivy@alpha.example"
    assert User.objects.get(email="ivy@alpha.example").check_password(NEW_PASSWORD)


def test_an_invite_link_works_only_once(client, admin, mailoutbox, django_capture_on_commit_callbacks):
    link = invite_link(client, admin, mailoutbox, django_capture_on_commit_callbacks)
    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    client.post("/logout/")

    again = client.get(link, follow=True)

    assert "This invite link is no longer valid" in again.text


# --- Request hardening ------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"REMOTE_USER": "alice@alpha.example"},
        {"HTTP_REMOTE_USER": "alice@alpha.example"},
        {"HTTP_X_FORWARDED_USER": "alice@alpha.example"},
        {"HTTP_X_REMOTE_USER": "alice@alpha.example"},
    ],
)
def test_identity_headers_never_log_anyone_in(client, admin, header):
    response = client.get("/a/alpha/inbox/", **header)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/a/alpha/inbox/"


def test_a_post_without_a_csrf_token_is_refused(admin, snapshot):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    before = snapshot()

    response = client.post("/a/alpha/settings/teams/", {"name": "Forged"})

    assert response.status_code == 403
    assert snapshot() == before


def test_a_login_without_a_csrf_token_is_refused(admin):
    client = Client(enforce_csrf_checks=True)

    response = log_in(client, "alice@alpha.example")

    assert response.status_code == 403
    assert logged_in_as(client) is None


def test_a_post_from_a_foreign_origin_is_refused_even_with_a_token(admin, snapshot):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    client.get("/a/alpha/settings/teams/")
    token = client.cookies["csrftoken"].value
    before = snapshot()

    response = client.post(
        "/a/alpha/settings/teams/",
        {"name": "Forged", "csrfmiddlewaretoken": token},
        headers={"Origin": "https://evil.com"},
    )

    assert response.status_code == 403
    assert snapshot() == before


def test_a_post_with_the_token_goes_through(admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    client.get("/a/alpha/settings/teams/")

    response = client.post(
        "/a/alpha/settings/teams/",
        {"name": "Support", "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )

    assert response.status_code == 302


@pytest.mark.parametrize(
    ("path", "signed_in"),
    [
        ("/login/", False),
        ("/signup/", False),
        ("/a/alpha/inbox/", True),
        ("/a/alpha/settings/members/", True),
    ],
)
def test_pages_forbid_foreign_scripts_and_never_allow_credentialed_cors(client, admin, path, signed_in):
    if signed_in:
        client.force_login(admin.user)

    response = client.get(path, headers={"Origin": "https://evil.com"})

    assert response.status_code == 200
    directives = [d.strip() for d in response["Content-Security-Policy"].split(";")]
    assert "script-src 'self'" in directives
    assert "Access-Control-Allow-Credentials" not in response
    assert "Access-Control-Allow-Origin" not in response


# --- Lockout ----------------------------------------------------------------------


def _bad_login(email: str) -> int:
    try:
        return log_in(Client(), email, "not-the-password").status_code
    finally:
        connection.close()


def test_fifty_parallel_bad_logins_lock_the_login_so_the_right_password_is_refused(
    transactional_db, settings
):
    UserFactory(email="target@alpha.example")

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(_bad_login, ["target@alpha.example"] * 50))

    assert set(statuses) <= {200, 429}, statuses
    assert 429 in statuses
    # One counter row, and no failure lost to a race between the threads.
    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT
    assert attempt.failures_since_start >= statuses.count(200)
    client = Client()
    response = log_in(client, "target@alpha.example")
    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert logged_in_as(client) is None


def test_varying_the_case_of_the_email_does_not_get_around_the_lockout(client, transactional_db, settings):
    UserFactory(email="target@alpha.example")
    spellings = [
        "target@alpha.example",
        "TARGET@alpha.example",
        "Target@Alpha.Example",
        "tArGeT@alpha.example",
    ]

    for i in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), spellings[i % len(spellings)], "not-the-password")

    response = log_in(client, "TaRgEt@alpha.example")
    assert response.status_code == 429
    assert logged_in_as(client) is None


def test_a_few_bad_logins_do_not_lock_out_the_right_password(client, admin):
    for _ in range(3):
        log_in(Client(), "alice@alpha.example", "not-the-password")

    log_in(client, "alice@alpha.example")

    assert logged_in_as(client) == "alice@alpha.example"


def test_an_invited_member_who_never_set_a_password_can_ask_for_a_reset_link(client, admin, mailoutbox):
    from django_scopes import scope

    from inboxhub.services import add_member

    with scope(account=admin.account):
        add_member(admin.account, email="ivy@alpha.example", full_name="Ivy Invited", password=None, by=admin)
    client.post("/password/reset/", {"email": "ivy@alpha.example"})
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["ivy@alpha.example"]
