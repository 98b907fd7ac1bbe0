"""The ingress parses MAIL FROM and RCPT TO addresses exactly as aiosmtpd does (its faster copy)."""

import asyncio
import random

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


def random_arguments(count: int) -> list[str]:
    """Arguments built from the characters that matter to either parser, with a fixed seed."""
    pieces = [
        "<",
        ">",
        "@",
        ".",
        " ",
        "\t",
        "(",
        ")",
        '"',
        "\\",
        ":",
        ",",
        "[",
        "]",
        "-",
        "+",
        "=",
        "a",
        "Z",
        "0",
        "dana",
        "example",
        "com",
        "å",
        "SIZE=10",
        "BODY=8BITMIME",
        "\udcff",
    ]
    rng = random.Random(2526)
    arguments = []
    for _ in range(count):
        middle = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        arguments.append(rng.choice(["", "<", " <"]) + middle + rng.choice(["", ">", "> ", ">  x", "> (c)"]))
        arguments.append(
            f"<{middle.replace(' ', '')}@{rng.choice(pieces)}.example>{rng.choice(['', ' SIZE=1'])}"
        )
        local = "".join(
            rng.choice(["dana", ".", "+", "-", "a", "0", "=", "_", "Z"]) for _ in range(rng.randint(0, 6))
        )
        domain = "".join(rng.choice(["shop", ".", "-", "x1", "EXAMPLE"]) for _ in range(rng.randint(0, 4)))
        arguments.append(f"<{local}@{domain}>{rng.choice(['', ' ', ' SIZE=1', '  SIZE=1', ' (c)', 'x'])}")
    return arguments


def test_random_arguments_parse_as_aiosmtpd_parses_them(servers):
    original, ours = servers
    original.local_part_limit = ours.local_part_limit = 64
    differences = [
        (argument, outcome(ours, argument), outcome(original, argument))
        for argument in random_arguments(5000)
        if outcome(ours, argument) != outcome(original, argument)
    ]
    assert differences == []


def outcome(server: SMTP, argument: str) -> object:
    # The email package's parser crashes on some garbage, which aiosmtpd's own lets through (the
    # session then got 451 4.3.0); the ingress's copy calls it malformed like any other bad address.
    try:
        return server._getaddr(argument)
    except (IndexError, AttributeError):
        return None, None
