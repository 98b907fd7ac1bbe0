"""Link tokens stay out of the logs, and the reset page leaves the mail to a worker (issue 16, point 6)."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from celery.signals import before_task_publish

from inboxhub.celery import app as celery_app
from inboxhub.password_reset import RESET_TASK
from tests.channels_conn.conftest import database_url_for_subprocess, free_port
from tests.smarthost import smarthost

BASE_DIR = Path(__file__).resolve().parents[2]

RESET_TOKEN = "cz7k1q-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
INVITE_TOKEN = "cz7k1q-f9e8d7c6b5a4938271605f4e3d2c1b0a"
VERIFY_TOKEN = "eyJhIjoxfQ:1vSecretVerifyToken:AbCdEfGhIjKlMnOp"
IMAGE_TOKEN = "eyJpIjoyfQ:1vSecretImageToken:QrStUvWxYz012345"
TOKENS = (RESET_TOKEN, INVITE_TOKEN, VERIFY_TOKEN, IMAGE_TOKEN)


@pytest.fixture
def web_log(db, tmp_path):
    """A real gunicorn on the test database, its access log and Django's log in one file; yields get()."""
    port = free_port()
    log = tmp_path / "web.log"
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}},
        "DATABASE_URL": database_url_for_subprocess(),
        "DJANGO_SETTINGS_MODULE": "inboxhub.settings",
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "inboxhub.wsgi", "-b", f"127.0.0.1:{port}"]
    with log.open("wb") as output:
        server = subprocess.Popen(  # the same command line as runall's web, access log on stdout
            [*command, "--workers", "1", "--access-logfile", "-"],
            cwd=BASE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

        def get(path: str, **headers: str) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own server
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        yield get, log
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_links_with_tokens_are_logged_with_the_token_masked(web_log):
    get, log = web_log
    get(f"/password/reset/MQ/{RESET_TOKEN}/")
    get(f"/invite/MQ/{INVITE_TOKEN}/")
    get(f"/verify/from-address/?token={VERIFY_TOKEN}")
    get(f"/inline-images/{IMAGE_TOKEN}/")  # 404: Django logs "Not Found: <path>" too
    get("/static/css/app.css", Referer=f"http://127.0.0.1/verify/from-address/?token={VERIFY_TOKEN}")
    time.sleep(0.5)  # the access log line is written after the response

    text = log.read_text()
    assert not [token for token in TOKENS if token in text], text
    assert '"GET /password/reset/MQ/[token]/ HTTP/1.1" 200' in text
    assert '"GET /invite/MQ/[token]/ HTTP/1.1" 200' in text
    assert '"GET /verify/from-address/?token=[token] HTTP/1.1" 400' in text
    assert '"GET /inline-images/[token]/ HTTP/1.1" 404' in text
    assert "Not Found: /inline-images/[token]/" in text
    assert '"http://127.0.0.1/verify/from-address/?token=[token]"' in text


@pytest.fixture
def published(monkeypatch):
    """Tasks go to the broker (in-memory here) instead of running in the request; yields what was sent."""
    monkeypatch.setattr(celery_app.conf, "task_always_eager", False)
    sent = []

    def keep(sender=None, body=None, **_kwargs):
        sent.append((sender, body[1]))

    before_task_publish.connect(keep, weak=False)
    yield sent
    before_task_publish.disconnect(keep)


def test_the_reset_page_hands_the_mail_to_a_worker_and_talks_to_no_mail_server(
    client, admin, settings, published
):
    with smarthost(settings) as mail_server:
        response = client.post("/password/reset/", {"email": "alice@alpha.example"})

        assert response["Location"] == "/password/reset/sent/"
        assert mail_server.attempts == 0 and mail_server.messages == []
        [(task, kwargs)] = published
        assert task == RESET_TASK
        assert kwargs == {"email": "alice@alpha.example", "domain": "testserver", "use_https": False}

        celery_app.tasks[task].apply(kwargs=kwargs)  # what the worker does with it

        [(rcpt_tos, message)] = mail_server.messages
    assert rcpt_tos == ["alice@alpha.example"]
    link = re.search(r"http://testserver(/password/reset/[\w-]+/[\w-]+/)", message.get_content())[1]
    assert client.get(link)["Location"].endswith("/set-password/")


def test_known_and_unknown_emails_get_the_same_answer_and_the_same_task(client, admin, settings, published):
    with smarthost(settings) as mail_server:
        known = client.post("/password/reset/", {"email": "alice@alpha.example"})
        unknown = client.post("/password/reset/", {"email": "nobody@alpha.example"})
        for task, kwargs in published:
            celery_app.tasks[task].apply(kwargs=kwargs)

        assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
        assert [(task, sorted(kwargs)) for task, kwargs in published] == [
            (RESET_TASK, ["domain", "email", "use_https"])
        ] * 2
        assert [rcpt_tos for rcpt_tos, _ in mail_server.messages] == [["alice@alpha.example"]]


def test_a_reset_mail_the_server_turns_away_for_now_is_sent_on_a_later_try(
    client, admin, settings, published
):
    client.post("/password/reset/", {"email": "alice@alpha.example"})
    [(task, kwargs)] = published
    with smarthost(settings) as mail_server:
        mail_server.data_answers = ["451 4.7.1 Greylisted, please try again later"]

        celery_app.tasks[task].apply(kwargs=kwargs)  # eager: the retry runs at once

        assert mail_server.attempts == 2
        [(rcpt_tos, message)] = mail_server.messages
    assert rcpt_tos == ["alice@alpha.example"]
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.search(r"http://testserver/password/reset/[\w-]+/[\w-]+/", message.get_content())
