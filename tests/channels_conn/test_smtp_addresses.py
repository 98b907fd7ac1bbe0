"""The ingress parses MAIL FROM and RCPT TO addresses exactly as aiosmtpd does (its faster copy)."""

import asyncio

import pytest
from aiosmtpd.smtp import SMTP

from channels_conn.smtp import IngressSMTP

ARGUMENTS = [
    "",
    "<>",
    "<dana@customer.example>",
    " <dana@customer.example>",
    "<dana@customer.example> SIZE=1000 BODY=8BITMIME",
    "dana@customer.example",
    "dana@customer.example SIZE=1000",
    '<"dana smith"@customer.example>',
    "<dana+order-7@customer.example>",
    "<Dana.Customer@CUSTOMER.example>",
    "<dåna@kund.example> SMTPUTF8",
    "<@relay.example:dana@customer.example>",
    "<dana@[192.0.2.7]>",
    "<dana@customer.example",
    "dana@customer.example>",
    "<dana>",
    "<@>",
    "<<dana@customer.example>>",
    "<dana@@customer.example>",
    "Dana <dana@customer.example>",
    "(comment) <dana@customer.example>",
    "<" + "a" * 64 + "@customer.example>",
    "<" + "a" * 65 + "@customer.example>",
    "\udcff<dana@customer.example>",
]


@pytest.fixture
def servers():
    loop = asyncio.new_event_loop()
    original, ours = SMTP(object(), loop=loop), IngressSMTP(object(), loop=loop)
    yield original, ours
    loop.close()


@pytest.mark.parametrize("local_part_limit", [0, 64])
@pytest.mark.parametrize("argument", ARGUMENTS)
def test_each_argument_parses_as_aiosmtpd_parses_it(servers, argument, local_part_limit):
    original, ours = servers
    original.local_part_limit = ours.local_part_limit = local_part_limit
    assert ours._getaddr(argument) == original._getaddr(argument)
