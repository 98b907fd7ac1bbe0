"""Lockout: too many wrong passwords lock the email and the IP address, each on its own (issue 16 point 3)."""

import time_machine
from django.test import Client

from tests.factories import PASSWORD

WRONG = "not-the-password"


def log_in(email: str, password: str, ip: str, client: Client | None = None, **headers):
    client = client or Client(enforce_csrf_checks=True)
    client.get("/login/", REMOTE_ADDR=ip, **headers)
    token = client.cookies["csrftoken"].value
    data = {"username": email, "password": password, "csrfmiddlewaretoken": token}
    return client.post("/login/", data, REMOTE_ADDR=ip, **headers)


def signed_in(client: Client) -> bool:
    return client.get("/accounts/").status_code == 200


def test_spraying_many_emails_from_one_ip_locks_that_ip(admin, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(f"guess{n}@alpha.example", WRONG, "203.0.113.7")

    client = Client(enforce_csrf_checks=True)
    response = log_in("alice@alpha.example", PASSWORD, "203.0.113.7", client)

    assert response.status_code == 429
    assert "Too many attempts" in response.text
    assert not signed_in(client)


def test_guessing_one_email_from_many_ips_locks_that_email(admin, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in("alice@alpha.example", WRONG, f"198.51.100.{n + 1}")

    client = Client(enforce_csrf_checks=True)
    response = log_in("alice@alpha.example", PASSWORD, "192.0.2.200", client)

    assert response.status_code == 429
    assert not signed_in(client)


def test_a_locked_ip_does_not_stop_other_people_elsewhere(admin, outsider, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(f"guess{n}@alpha.example", WRONG, "203.0.113.7")

    client = Client(enforce_csrf_checks=True)
    log_in("charlie@bravo.example", PASSWORD, "192.0.2.9", client)

    assert signed_in(client)


def test_logging_into_ones_own_login_does_not_reset_the_count_of_an_ip(admin, outsider, settings):
    for n in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(f"guess{n}@alpha.example", WRONG, "203.0.113.7")
    log_in("charlie@bravo.example", PASSWORD, "203.0.113.7")
    log_in("guess-last@alpha.example", WRONG, "203.0.113.7")

    response = log_in("alice@alpha.example", PASSWORD, "203.0.113.7")

    assert response.status_code == 429


def test_the_lockout_page_says_when_the_lock_ends_counting_from_the_last_attempt(admin, settings):
    with time_machine.travel("2026-12-07 12:00:00Z", tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            log_in("alice@alpha.example", WRONG, "198.51.100.1")
    with time_machine.travel("2026-12-07 12:05:00Z", tick=False):
        response = log_in("alice@alpha.example", PASSWORD, "198.51.100.1")

    assert response.status_code == 429
    assert "You can try again after" in response.text
    assert '<time datetime="2026-12-07T12:20:00+00:00">12:20 UTC</time>' in response.text
    assert "(15\xa0minutes from now)" in response.text


def test_the_lock_ends_after_its_time(admin, settings):
    with time_machine.travel("2026-12-07 12:00:00Z", tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            log_in("alice@alpha.example", WRONG, "198.51.100.1")
    with time_machine.travel("2026-12-07 12:16:00Z", tick=False):
        client = Client(enforce_csrf_checks=True)
        log_in("alice@alpha.example", PASSWORD, "198.51.100.1", client)

        assert signed_in(client)


def test_behind_a_proxy_each_client_is_counted_by_the_address_the_proxy_saw(admin, outsider, settings):
    settings.WEB_PROXY_COUNT = 1
    for n in range(settings.AXES_FAILURE_LIMIT):
        # What a client writes into X-Forwarded-For itself stands left of what the proxy appends.
        log_in(f"guess{n}@alpha.example", WRONG, "10.0.0.2", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.7")

    sprayer = Client(enforce_csrf_checks=True)
    someone_else = Client(enforce_csrf_checks=True)
    locked = log_in("alice@alpha.example", PASSWORD, "10.0.0.2", sprayer, HTTP_X_FORWARDED_FOR="203.0.113.7")
    log_in("charlie@bravo.example", PASSWORD, "10.0.0.2", someone_else, HTTP_X_FORWARDED_FOR="198.51.100.9")

    assert locked.status_code == 429
    assert signed_in(someone_else)
