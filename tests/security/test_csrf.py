"""A7 and advisory 27: every POST and htmx endpoint refuses a request without a CSRF token or from a
foreign Origin (403, nothing changes), and no answer carries credentialed CORS headers.

The endpoints come from the URLconf, so one added later is covered without an edit here.

Already covered elsewhere: tests/inboxhub/test_auth.py (the login form without a token; the
teams page with a token from a foreign Origin; CSP and CORS headers on four pages).
"""

import pytest
from django.test import Client

from tests.inboxhub.conftest import project_rows
from tests.security.conftest import all_routes, each, fill, ids_for_route, kwarg_names, post_data

pytestmark = pytest.mark.django_db

FOREIGN = "https://evil.example"
# Kwargs of the pages outside an account: a request is refused before any view reads them.
OUTSIDE_VALUES = {"uidb64": "MQ", "token": "set-password"}


def url_of(world, route: str, name: str) -> str:
    values = dict(OUTSIDE_VALUES, **ids_for_route(name, world.a, world.a.open))
    unknown = [k for k in kwarg_names(route) if k not in values]
    assert unknown == [], (
        f"{name} takes {unknown}: give them a value in tests/security (OUTSIDE_VALUES, ids_of)"
    )
    return fill(route, {k: values[k] for k in kwarg_names(route)})


@pytest.fixture
def browser(world) -> Client:
    """Alice's browser: a session and a CSRF cookie, with Django's CSRF checks on."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.a.admin.user)
    client.get("/a/alpha/inbox/")
    assert "csrftoken" in client.cookies
    return client


def test_the_walk_sees_the_htmx_and_form_endpoints():
    names = {name for _, name in all_routes()}
    assert {"inboxes:reply", "conversations:assign", "tickets:move", "login", "logout", "signup"} <= names


def test_a_post_without_a_csrf_token_gets_403_and_nothing_changes(browser, world):
    def check(route, name):
        url = url_of(world, route, name)
        before = project_rows()
        plain = browser.post(url, post_data(name, world.a, world.a.open))
        htmx = browser.post(url, post_data(name, world.a, world.a.open), headers={"HX-Request": "true"})
        assert (plain.status_code, htmx.status_code) == (403, 403)
        assert project_rows() == before

    each(all_routes(), check)


def test_a_post_with_the_token_from_a_foreign_origin_gets_403_and_nothing_changes(browser, world):
    token = browser.cookies["csrftoken"].value

    def check(route, name):
        url = url_of(world, route, name)
        data = post_data(name, world.a, world.a.open)
        before = project_rows()
        form = browser.post(url, {**data, "csrfmiddlewaretoken": token}, headers={"Origin": FOREIGN})
        # htmx sends the token as a header (`hx-headers` on <body>), as a cross-site fetch could.
        htmx = browser.post(
            url, data, headers={"HX-Request": "true", "X-CSRFToken": token, "Origin": FOREIGN}
        )
        assert (form.status_code, htmx.status_code) == (403, 403)
        assert project_rows() == before

    each(all_routes(), check)


def test_the_same_posts_with_the_token_from_our_origin_are_not_refused_for_csrf(browser, world):
    """The control: the 403s above are the CSRF check's, not the views'."""
    token = browser.cookies["csrftoken"].value
    headers = {"HX-Request": "true", "X-CSRFToken": token, "Origin": "http://testserver"}

    def check(route, name):
        answer = browser.post(
            url_of(world, route, name), post_data(name, world.a, world.a.open), headers=headers
        )
        assert answer.status_code != 403, answer.status_code

    # In the URLconf's order, so an endpoint that removes a row (a member, a team) comes after its page.
    each([(r, n) for r, n in all_routes() if "<slug:subdomain>" in r], check)


def test_no_answer_allows_credentialed_cross_origin_reads(browser, world):
    preflight = {"Origin": FOREIGN, "Access-Control-Request-Method": "POST"}

    def check(route, name):
        url = url_of(world, route, name)
        for answer in (
            browser.get(url, headers={"Origin": FOREIGN}),
            browser.options(url, headers=preflight),
        ):
            cors = {k for k in answer.headers if k.lower().startswith("access-control-allow")}
            assert cors == set(), (answer.status_code, cors)

    each(all_routes(), check)
