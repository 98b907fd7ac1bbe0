"""The thread in Chromium: an image a mail carries inline (cid:) shows inside its sandboxed HTML (H2)."""

import base64
import struct
import zlib

from tests.dnsserver import dns_server  # noqa: F401 - the fixture sender_checks uses
from tests.e2e.conftest import assert_accessible, login, screenshot
from tests.e2e.test_sender_authentication import deliver, sender_checks, thread_url  # noqa: F401 - a fixture


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour, from the standard library alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def newsletter() -> str:
    """An HTML mail with its logo as a multipart/related part, as Outlook and Apple Mail send them."""
    logo = base64.encodebytes(png(40, 20, (200, 30, 30))).decode().replace("\n", "\r\n")
    return (
        "From: Carol Customer <carol@customer.example>\r\nTo: {to}\r\nSubject: Our new logo\r\n"
        "Date: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: <logo1@customer.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/related; boundary="REL"\r\n\r\n'
        "--REL\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        '<p>Here it is:</p><p><img src="cid:logo.png@01DA0001" alt="Carol\'s logo"></p>\r\n'
        "--REL\r\nContent-Type: image/png; name=logo.png\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-ID: <logo.png@01DA0001>\r\nContent-Disposition: inline; filename=logo.png\r\n\r\n"
        + logo
        + "--REL--\r\n"
    )


def test_an_inline_image_shows_in_the_mail_html(page, demo, sender_checks):  # noqa: F811 - the imported fixture
    message = deliver(newsletter(), mail_from="carol@customer.example")
    login(page, "admin@acme.example")

    page.goto(thread_url(message))
    page.locator("iframe.message-html").scroll_into_view_if_needed()
    logo = page.frame_locator("iframe.message-html").get_by_role("img", name="Carol's logo")
    logo.wait_for()

    # decode() settles once the image has loaded and decoded, or failed to.
    loaded = logo.evaluate("img => img.decode().then(() => img.naturalWidth, () => 0)")
    assert loaded == 40
    screenshot(page, "thread-inline-image")
    assert_accessible(page)
