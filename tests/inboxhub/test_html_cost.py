"""HTML too costly to build a tree of is not displayed, and ordinary HTML always is (B5, H2)."""

import ipaddress
from email.message import EmailMessage

import pytest

from inboxhub.lib.html import sanitize_html
from inboxhub.lib.html_nesting import MAX_TAGS, parse_cost_refusal
from inboxhub.lib.mail.parsing import html_to_text
from ingest.pipeline import ingest_inbound
from tests.inboxes.helpers import address_of, default_inbox, messages_in, spool
from tests.inboxhub.test_sanitizer import newsletter

DEEP = "elements nested more than 512 levels deep"

# Each held html5ever (and so a worker) for seconds to minutes at a few hundred kilobytes.
CRAFTED = {
    "distinct formatting elements": "".join(f"<b c{n}>" for n in range(2_000)) + "x",
    "open divs": "<div>" * 2_000 + "x",
    "formatting re-opened by paragraphs": "".join(f"<p><b c{n}>" for n in range(2_000)),
    "forms leaving their content open": "<form><div></form>" * 2_000,
    "fonts of many colours": "".join(f'<font color="#{n:06x}">x' for n in range(2_000)),
    "formatting past stray end tags": "".join(f"<b c{n}></i>" for n in range(2_000)),
    "cells outside any table": "".join(f"<i c{n}>x<th>" for n in range(2_000)),
}

ORDINARY = {
    "unclosed paragraphs": "<p>para" * 5_000,
    "unclosed list items": "<ul>" + "<li>item" * 5_000 + "</ul>",
    "rows and cells without end tags": "<table>" + "<tr><td>a<td>b" * 3_000 + "</table>",
    "a font left open in each cell": "<table><tr>" + "<td><font face=Arial>x</td>" * 3_000 + "</table>",
    "balanced nesting": "<div><table><tr><td><p><b>x</b></p></td></tr></table></div>" * 2_000,
    "a megabyte of newsletter": newsletter(1024 * 1024),
}


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_nesting_is_not_displayed_and_the_reason_says_why(name):
    result = sanitize_html(CRAFTED[name])
    assert result.html == ""
    assert result.omitted == f"the whole HTML ({DEEP})"


def test_more_tags_than_the_limit_are_not_displayed():
    html = "<p>x</p>" * (MAX_TAGS // 2 + 1)
    assert (
        sanitize_html(html).omitted
        == f"the whole HTML ({MAX_TAGS + 2:,} tags, over the 30,000-tag limit for display)"
    )


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_html_is_displayed(name):
    assert parse_cost_refusal(ORDINARY[name]) == ""
    assert sanitize_html(ORDINARY[name]).html != ""


@pytest.mark.parametrize("name", CRAFTED)
def test_the_text_of_crafted_html_is_still_read(name):
    assert html_to_text(CRAFTED[name] + "Hello there").endswith("Hello there")


@pytest.mark.django_db
def test_a_mail_with_crafted_html_keeps_its_text_and_says_why_its_html_is_not_shown(settings, admin):
    settings.TRUSTED_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]  # no DNS for sender authentication
    inbox = default_inbox(admin.account)
    to = address_of(inbox)
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Mallory <mallory@evil.example>", to, "Deep"
    mail["Message-ID"] = "<deep@evil.example>"
    mail.set_content("".join(f"<b c{n}>" for n in range(2_000)) + "Hello there", subtype="html")
    ingest_inbound(spool(mail.as_bytes(), to))
    [message] = messages_in(inbox.account)
    assert message.html == ""
    assert message.html_omitted == f"the whole HTML ({DEEP})"
    assert message.text == "Hello there"
