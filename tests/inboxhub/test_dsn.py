"""Reading bounces: which message came back, for whom, and why (RFC 3464), real and reconstructed."""

import pytest

from inboxhub.lib.mail.parsing import parse_message
from tests.corpora import CORPORA
from tests.machine_mail import AUTO_REPLIES, machine_mail

REPLY_ID = "reply-1@alpha.inbox.localhost"
CPYTHON = CORPORA / "cpython-email"
needs_corpora = pytest.mark.skipif(not CPYTHON.is_dir(), reason=f"{CPYTHON} is absent (shared corpora)")


def report_of(raw: bytes):
    return parse_message(raw).delivery_report


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        (
            "postfix_bounce",
            "5.1.1",
            "550 5.1.1 <carol@customer.example>: Recipient address rejected: "
            "User unknown in virtual mailbox table",
        ),
        (
            "exchange_ndr",
            "5.1.10",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup "
            "(carol@customer.example)",
        ),
        ("exim_bounce", "5.0.0", "550 5.2.1 <carol@customer.example>: mailbox disabled"),
        ("exim_prose_bounce", "5.1.1", "550 5.1.1 <carol@customer.example>... User unknown"),
    ],
)
def test_a_bounce_names_the_returned_message_and_the_failure_in_the_servers_words(name, status, reason):
    report = report_of(machine_mail(name))
    [recipient] = report.failed
    assert report.original_message_ids[0] == REPLY_ID
    assert (recipient.recipient, recipient.status, recipient.reason) == (
        "carol@customer.example",
        status,
        reason,
    )


def test_gmails_multi_line_reply_reads_as_one_sentence():
    [recipient] = report_of(machine_mail("gmail_dsn")).failed
    assert recipient.reason.startswith(
        "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking "
        "the recipient's email address for typos or unnecessary spaces."
    )
    assert "550-" not in recipient.reason


def test_a_delay_warning_reports_a_delay_and_no_failure():
    report = report_of(machine_mail("postfix_delayed"))
    assert report.failed == []
    [recipient] = report.delayed
    assert recipient.status == "4.4.1"
    assert report.original_message_ids == (REPLY_ID,)


@pytest.mark.parametrize("name", [*AUTO_REPLIES, "list_mail"])
def test_auto_replies_and_list_mail_are_no_bounce_even_when_they_cite_our_reply(name):
    parsed = parse_message(machine_mail(name))
    assert parsed.automated
    assert parsed.delivery_report is None


def test_the_returned_messages_own_id_comes_before_the_reports_in_reply_to():
    raw = machine_mail("exim_bounce").replace(
        b"References: <reply-1@alpha.inbox.localhost>", b"In-Reply-To: <earlier@alpha.inbox.localhost>"
    )
    assert report_of(raw).original_message_ids == (REPLY_ID, "earlier@alpha.inbox.localhost")


def test_a_prose_bounce_that_quotes_no_reply_code_states_no_action():
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: support@alpha.inbox.localhost\r\n"
        b"Subject: Returned mail\r\n\r\nSomething happened to your message.\r\n"
        b"Message-ID: <reply-1@alpha.inbox.localhost>\r\n"
    )
    report = report_of(raw)
    assert report.original_message_ids == (REPLY_ID,)
    assert [r.action for r in report.recipients] == [""]


# --- real DSNs from the CPython test suite (shared corpora) ---


@needs_corpora
@pytest.mark.parametrize(
    ("file", "message_id", "status", "reason"),
    [
        (
            "msg_16.txt",
            "002001c144a6$8752e060$56104586@oxy.edu",
            "5.0.0",
            "5.0.0 (recipient reached disk quota) (jangel1@cougar.noc.ucla.edu)",
        ),
        (
            "msg_43.txt",
            "edab.7804f5cb8070@python.org",
            "5.7.1",
            "550 5.7.1 Message content rejected, id=01956-02-2 - BANNED: auto__mail.python.bat "
            "(xxxxxxx@dot.ca.gov)",
        ),
    ],
)
def test_real_reports_give_the_returned_id_and_the_first_failure(file, message_id, status, reason):
    report = report_of((CPYTHON / file).read_bytes())
    assert report.standard
    assert report.original_message_ids[0] == message_id
    assert (report.failed[0].status, report.failed[0].reason) == (status, reason)


@needs_corpora
def test_a_real_report_with_a_broken_boundary_is_read_from_its_text():
    report = report_of((CPYTHON / "msg_25.txt").read_bytes())
    assert not report.standard
    [recipient] = report.failed
    assert recipient.recipient == "scoffman@wellpartner.com"
    assert recipient.reason.startswith("554 5.4.6 Too many hops 19 (17 max)")
