"""The thread in Chromium (H2): a long thread pages in place, quoted text folds, remote images wait for
"Show images", and each mail's frame takes the height of its content."""

import datetime
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.dnsserver import dns_server  # noqa: F401 - the fixture sender_checks uses
from tests.e2e.conftest import CSP_LISTENER, DESKTOP, assert_accessible, assert_fits_mobile, login, screenshot
from tests.e2e.test_inline_images import png
from tests.e2e.test_sender_authentication import deliver, sender_checks, thread_url  # noqa: F401 - a fixture
from tests.inboxes.test_thread_view import add_replies

REPLY_HTML = (
    "From: Carol Customer <carol@customer.example>\r\nTo: {to}\r\nSubject: Printer offline\r\n"
    "Date: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: <quoted1@customer.example>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    '<div dir="ltr">Thanks, turning it off and on again fixed it.</div><br><div class="gmail_quote">'
    '<div dir="ltr" class="gmail_attr">On Mon, Nov 23, 2026 at 11:00 AM Support &lt;support@acme.example&gt; '
    'wrote:<br></div><blockquote class="gmail_quote">'
    + "<p>Have you tried turning it off and on again?</p>" * 12
    + "</blockquote></div>\r\n"
)

NEWSLETTER = (
    "From: Carol Customer <carol@customer.example>\r\nTo: {{to}}\r\nSubject: Our November news\r\n"
    "Date: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: <news1@customer.example>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    '<h1>November news</h1><p><img src="{image}" alt="Remote logo" width="120" height="60"></p>'
    + "<p>A paragraph of news that makes the mail longer than the old fixed box.</p>" * 40
    + "\r\n"
)


@pytest.fixture
def context(browser, live_server, problems):
    """As conftest's, trusting the self-signed certificate of the stand-in remote image host."""
    context = browser.new_context(
        base_url=live_server.url, viewport=DESKTOP, reduced_motion="reduce", ignore_https_errors=True
    )
    context.set_default_timeout(5_000)
    context.expose_binding("__reportCspViolation", lambda source, violation: problems.csp.append(violation))
    context.add_init_script(script=CSP_LISTENER)
    yield context
    context.close()


class ImageHost:
    """A remote image host on loopback over HTTPS (the sanitizer keeps https: images only)."""

    def __init__(self, tmp_path):
        self.requests: list[str] = []
        certificate, key = tmp_path / "host.pem", tmp_path / "host.key"
        _self_signed(certificate, key)
        requests, image = self.requests, png(120, 60, (30, 120, 200))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the standard library's name
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(image)))
                self.end_headers()
                self.wfile.write(image)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(certificate, key)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _self_signed(certificate_path, key_path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@pytest.fixture
def image_host(tmp_path):
    host = ImageHost(tmp_path)
    yield host
    host.close()


def frame_height(page, frame) -> float:
    return frame.evaluate("el => el.getBoundingClientRect().height")


def wait_for_fitted_frame(page, selector="iframe.message-html"):
    frame = page.locator(selector).first
    frame.scroll_into_view_if_needed()
    page.wait_for_function(
        "s => { const f = document.querySelector(s); return f && f.style.height !== ''; }", arg=selector
    )
    return frame


def test_a_long_thread_opens_on_its_newest_messages_and_loads_older_ones_in_place(page, demo, sender_checks):  # noqa: F811
    first = deliver(REPLY_HTML.replace("quoted1@", "long1@"), mail_from="carol@customer.example")
    add_replies(first, 64)
    login(page, "admin@acme.example")

    page.goto(thread_url(first))
    messages = page.locator("ol.thread article.message")
    assert messages.count() == 30
    assert (
        "Reply number 35" in messages.first.inner_text() and "Reply number 64" in messages.last.inner_text()
    )
    screenshot(page, "thread-long-newest-page", full_page=False)

    page.get_by_role("link", name="Show 35 older messages").click()
    page.wait_for_function("() => document.querySelectorAll('ol.thread article.message').length === 60")
    assert "Reply number 5" in messages.first.inner_text()
    # The focus moves to the first message loaded, where reading resumes.
    assert page.evaluate(
        "() => document.activeElement.querySelector('article').id"
    ) == messages.first.get_attribute("id")
    page.get_by_role("link", name="Show 5 older messages").click()
    page.wait_for_function("() => document.querySelectorAll('ol.thread article.message').length === 65")
    assert page.get_by_role("link", name="older message").count() == 0
    assert (
        "Thanks, turning it off and on again fixed it."
        in page.frame_locator("iframe.message-html").locator("body").inner_text()
    )
    screenshot(page, "thread-long-all-loaded")
    assert_accessible(page)
    assert_fits_mobile(page)
    screenshot(page, "thread-long-mobile", full_page=False)


def test_quoted_text_is_folded_in_the_frame_and_opens_on_request(page, demo, sender_checks):  # noqa: F811
    message = deliver(REPLY_HTML, mail_from="carol@customer.example")
    login(page, "admin@acme.example")

    page.goto(thread_url(message))
    frame = wait_for_fitted_frame(page)
    mail = page.frame_locator("iframe.message-html")
    assert mail.get_by_text("Thanks, turning it off and on again fixed it.").is_visible()
    assert not mail.get_by_text("Have you tried turning it off").first.is_visible()
    folded = frame_height(page, frame)

    mail.get_by_text("Show quoted text").click()
    assert mail.get_by_text("Have you tried turning it off").first.is_visible()
    page.wait_for_function(
        "h => document.querySelector('iframe.message-html').offsetHeight > h + 100", arg=folded
    )
    # The whole mail shows without a scrollbar in the frame.
    assert page.evaluate(
        """() => { const f = document.querySelector('iframe.message-html');
                   return f.contentDocument.documentElement.scrollHeight <= f.clientHeight; }"""
    )
    screenshot(page, "thread-quoted-text-open")
    assert_accessible(page)


def test_remote_images_are_not_requested_until_the_agent_shows_them(page, demo, sender_checks, image_host):  # noqa: F811
    message = deliver(
        NEWSLETTER.format(image=f"{image_host.url}/logo.png"), mail_from="carol@customer.example"
    )
    login(page, "admin@acme.example")

    page.goto(thread_url(message))
    wait_for_fitted_frame(page)
    mail = page.frame_locator("iframe.message-html")
    mail.get_by_text("November news").wait_for()
    page.wait_for_timeout(300)  # room for a request, had anything let one out
    assert image_host.requests == []
    assert page.get_by_text("Remote images are hidden.").is_visible()
    screenshot(page, "thread-remote-images-hidden", full_page=False)
    assert_accessible(page)

    page.get_by_role("link", name="Show images").click()
    logo = mail.get_by_role("img", name="Remote logo")
    logo.wait_for()
    page.wait_for_function(
        """() => { const img = document.querySelector('iframe.message-html').contentDocument
                     .querySelector('img[alt="Remote logo"]');
                   return img && img.complete && img.naturalWidth === 120; }"""
    )
    assert image_host.requests == ["/logo.png"]
    assert page.get_by_text("Remote images are shown for this message.").is_visible()
    screenshot(page, "thread-remote-images-shown", full_page=False)


def test_the_mail_frame_takes_the_height_of_its_content(page, demo, sender_checks, image_host):  # noqa: F811
    long_mail = deliver(
        NEWSLETTER.format(image=f"{image_host.url}/logo.png"), mail_from="carol@customer.example"
    )
    login(page, "admin@acme.example")

    page.goto(thread_url(long_mail))
    frame = wait_for_fitted_frame(page)
    content = frame.evaluate("f => f.contentDocument.documentElement.scrollHeight")
    assert content > 1000
    assert abs(frame.evaluate("f => f.clientHeight") - content) <= 1
    assert frame.get_attribute("sandbox").split() == [
        "allow-same-origin",
        "allow-popups",
        "allow-popups-to-escape-sandbox",
    ]
    screenshot(page, "thread-frame-fitted")
    assert_fits_mobile(page)
    # Narrower, the text wraps into more lines: the frame follows.
    page.wait_for_function(
        """() => { const f = document.querySelector('iframe.message-html');
                   return Math.abs(f.clientHeight - f.contentDocument.documentElement.scrollHeight) <= 2; }"""
    )
    assert frame_height(page, frame) > content
    screenshot(page, "thread-frame-fitted-mobile", full_page=False)
