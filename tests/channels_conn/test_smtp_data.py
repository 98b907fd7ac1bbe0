"""The ingress reads DATA in bulk, yet answers and stores exactly what aiosmtpd's line loop does (issue 4).

Two real servers on sockets, the same except for how DATA is read, get the
same bytes in the same pieces: every reply and every stored message must match.
"""

import asyncio
import random
import socket
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from channels_conn.smtp import IngressSMTP
from inboxhub.lib.mail.smtp_data import DataLimits, read_section, unstuff
from tests.channels_conn.conftest import free_port
from tests.corpora import CORPORA

SAMPLES = Path(__file__).parent / "samples"
LINE = IngressSMTP.line_length_limit  # 2051: the longest line both readers buffer
SMALL_LIMIT = 6_000  # a message size limit the crafted cases can cross cheaply
TAIL = (
    b"MAIL FROM:<next@customer.example>\r\nRCPT TO:<inbox@acme.example>\r\nDATA\r\n"
    b"Subject: pipelined\r\n\r\nafter the first\r\n.\r\nQUIT\r\n"
)


class AiosmtpdData(IngressSMTP):
    """The ingress's protocol with aiosmtpd's own DATA loop: the reference."""

    smtp_DATA = SMTP.smtp_DATA


class Recorder:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope.original_content)
        return "250 OK"


class ProtocolController(Controller):
    def __init__(self, protocol: type[SMTP], size_limit: int) -> None:
        self.protocol = protocol
        super().__init__(Recorder(), hostname="127.0.0.1", port=free_port(), data_size_limit=size_limit)

    def factory(self) -> SMTP:
        return self.protocol(self.handler, **self.SMTP_kwargs)


@pytest.fixture(scope="module")
def servers():
    """{size limit: (aiosmtpd's DATA, the ingress's DATA)}, started on first use."""
    started: dict[int, tuple[ProtocolController, ProtocolController]] = {}

    def pair(size_limit: int) -> tuple[ProtocolController, ProtocolController]:
        if size_limit not in started:
            started[size_limit] = (
                ProtocolController(AiosmtpdData, size_limit),
                ProtocolController(IngressSMTP, size_limit),
            )
            for controller in started[size_limit]:
                controller.start()
        return started[size_limit]

    yield pair
    for controllers in started.values():
        for controller in controllers:
            controller.stop()


def converse(controller: ProtocolController, pieces: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Send one session in `pieces`, pausing between some; return every reply and the messages stored."""
    controller.handler.messages.clear()
    with socket.create_connection((controller.hostname, controller.port), timeout=20) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        replies = bytearray()

        def receive() -> None:
            while chunk := sock.recv(65536):
                replies.extend(chunk)

        receiver = threading.Thread(target=receive)
        receiver.start()
        for index, piece in enumerate(pieces):
            sock.sendall(piece)
            if index % 3 == 1:
                time.sleep(0.0005)  # let the server read what came so far
        receiver.join(20)
    return bytes(replies), list(controller.handler.messages)


def session(data: bytes) -> bytes:
    """A pipelined session: `data` and CRLF as the message, the end line, another message, QUIT."""
    return (
        b"EHLO client.example\r\nMAIL FROM:<dana@customer.example>\r\nRCPT TO:<inbox@acme.example>\r\n"
        b"DATA\r\n" + data + b"\r\n.\r\n" + TAIL
    )


def pieces_of(stream: bytes, rng: random.Random) -> list[bytes]:
    pieces, start = [], 0
    while start < len(stream):
        size = rng.choice([1, 2, 3, 5, 64, 700, 2048, 2052, 9000, 70_000])
        pieces.append(stream[start : start + size])
        start += size
    return pieces


def assert_same_as_aiosmtpd(
    servers, data: bytes, *, size_limit: int = SMALL_LIMIT, seed: int = 0
) -> list[bytes]:
    reference, ours = servers(size_limit)
    pieces = pieces_of(session(data), random.Random(seed))
    expected, got = converse(reference, pieces), converse(ours, pieces)
    assert got[0] == expected[0], "replies differ"
    assert got[1] == expected[1], "stored messages differ"
    assert b"221 " in got[0], "the session did not reach QUIT"
    return got[1]


def ends_early(data: bytes) -> bool:
    """Whether `data` holds an end line of its own: the rest would be read as commands, and enough
    bogus ones make the server hang up, its replies then racing the client's writes."""
    return b"\r\n.\r\n" in b"\r\n" + data + b"\r\n"


def stuffed(message: bytes) -> bytes:
    """A message as a client sends it: CRLF lines, a leading dot doubled (RFC 5321 4.5.2)."""
    lines = message.replace(b"\r\n", b"\n").split(b"\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


CRAFTED = {
    "empty": b"",
    "one empty line": b"\r\n",
    "dot-stuffed first line": b"..first\r\nsecond",
    "a dot line that is not alone": b"Subject: x\r\n\r\n.. \r\n. \r\n.x\r\nend",
    "lines ending in a dot": b"Subject: x\r\n\r\nOne.\r\nTwo.\r\n.\r\nThree.",
    "bare LF dot": b"Subject: x\r\n\r\nfirst\n.\nMAIL FROM:<x@y>",
    "bare CR dot": b"Subject: x\r\n\r\nfirst\r.\rsecond",
    "LF dot CRLF": b"Subject: x\r\n\r\nfirst\n.\r\nsecond",
    "CRLF dot LF": b"Subject: x\r\n\r\nfirst\r\n.\nsecond",
    "CR dot CRLF": b"Subject: x\r\n\r\nfirst\r.\r\nsecond",
    "ends early, rest read as commands": b"Subject: x\r\n\r\nbody\r\n.\r\nNOOP\r\nRSET",
    "8-bit": "Subject: räksmörgås\r\n\r\n¡olé!\r\n".encode() + b"\xff\xfe\r\n",
    "line of 2049": b"a" * 2049,
    "line of 2050": b"a" * 2050,
    "line of 2051": b"a" * 2051,
    "line of 2052": b"a" * 2052,
    "dot line of 2049": b"." + b"a" * 2048,
    "long line then more": b"Subject: x\r\n\r\n" + b"b" * 5000 + b"\r\nshort\r\n",
    "long line ending in a dot line": b"c" * 3000 + b"\r\n.",
    "exactly the size limit": b"d" * 998
    + b"\r\n"
    + b"d" * 998
    + b"\r\n"
    + b"d" * 998
    + b"\r\n"
    + b"e" * 2998,
    "one over the size limit": b"d" * 998
    + b"\r\n"
    + b"d" * 998
    + b"\r\n"
    + b"d" * 998
    + b"\r\n"
    + b"e" * 2999,
    "over the size, then a long line": b"f\r\n" * 2100 + b"g" * 3000,
    "a long line, then over the size": b"g" * 3000 + b"\r\n" + b"f\r\n" * 2100,
    "a 2050 line crossing the size limit": b"h\r\n" * 1700 + b"i" * 2050,
    "a 2052 line crossing the size limit": b"h\r\n" * 1700 + b"i" * 2052,
    "far over the size limit": (b"j" * 76 + b"\r\n") * 4000,
    "far over with no line breaks": b"k" * 40_000,
    "CR at the reader's limit": b"l" * 2050 + b"\r" + b"\r\n",
}


@pytest.mark.parametrize("name", CRAFTED)
def test_a_crafted_section_gets_what_aiosmtpd_gives(servers, name):
    assert_same_as_aiosmtpd(servers, CRAFTED[name])


@pytest.mark.parametrize("seed", range(200))
def test_random_sections_get_what_aiosmtpd_gives(servers, seed):
    rng = random.Random(seed)
    tokens = [b"a", b"Z", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.", b".\r\n", b"\r\n\r\n", b"\xff", b" "]
    tokens += [b"x" * 2047, b"y" * 2050, b"z" * 2500]
    data = b"\r\n."
    while ends_early(data):
        data = b"".join(rng.choice(tokens) for _ in range(rng.randrange(1, 60)))
    assert_same_as_aiosmtpd(servers, data, seed=seed)


def sample_files() -> list[Path]:
    own = sorted(path for path in SAMPLES.rglob("*") if path.is_file())
    shared = sorted(
        path
        for folder in ("cpython-email", "django-helpdesk", "talon")
        if (CORPORA / folder).is_dir()
        for path in (CORPORA / folder).rglob("*")
        if path.is_file() and path.suffix in (".txt", ".eml", ".msg")
    )
    return own + shared


@pytest.mark.parametrize("path", sample_files(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_real_message_arrives_whole_and_as_aiosmtpd_stores_it(servers, path):
    message = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").removesuffix(b"\r\n")
    stored = assert_same_as_aiosmtpd(servers, stuffed(message), size_limit=1_000_000, seed=len(message))
    if max(map(len, message.split(b"\r\n"))) <= LINE - 2:
        assert stored[0] == message + b"\r\n"
    else:
        assert len(stored) == 1, "only the pipelined message: the sample's long line is refused"


@pytest.mark.parametrize("path", sample_files()[:40], ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_message_sent_as_stored_on_disk_gets_what_aiosmtpd_gives(servers, path):
    # Bare LF line ends, undoubled dots: what a careless client sends.
    data = path.read_bytes()
    assert not ends_early(data)
    assert_same_as_aiosmtpd(servers, data, size_limit=1_000_000, seed=7)


# --- the reader on its own: fed in any pieces, it stops right after the end line ---

STREAMS = [
    b".\r\nNOOP\r\n",
    b"..\r\n.\r\nNOOP\r\n",
    b"Subject: x\r\n\r\nbody.\r\n.\r\nQUIT\r\n",
    b"a\n.\nb\r.\rc\r\n.\nd\n.\r\ne\r\n.\r\nRSET\r\n",
    b"m" * 3000 + b"\r\n.\r\n.\r\n",
]


async def read_in_pieces(stream: bytes, size: int, limits: DataLimits) -> tuple[bytes, bool, bytes]:
    reader = asyncio.StreamReader(limit=limits.line_length_limit)
    section = asyncio.ensure_future(read_section(reader, limits))
    for start in range(0, len(stream), size):
        reader.feed_data(stream[start : start + size])
        await asyncio.sleep(0)
    reader.feed_eof()
    kept, complete = await section
    return kept, complete, await reader.read()


@pytest.mark.parametrize("stream", STREAMS, ids=range(len(STREAMS)))
def test_the_reader_leaves_what_follows_the_end_line_however_the_bytes_come(stream):
    limits = DataLimits(line_length_limit=LINE, size_limit=SMALL_LIMIT)
    whole = asyncio.run(read_in_pieces(stream, len(stream), limits))
    section, complete, rest = whole
    assert complete and stream == section + b".\r\n" + rest
    for size in range(1, 8):
        assert asyncio.run(read_in_pieces(stream, size, limits)) == whole


def test_the_reader_keeps_no_more_than_the_size_limit_and_a_line():
    limits = DataLimits(line_length_limit=LINE, size_limit=SMALL_LIMIT)
    stream = b"n" * 1_000_000 + b"\r\n.\r\nQUIT\r\n"
    section, complete, rest = asyncio.run(read_in_pieces(stream, 65_536, limits))
    assert not complete and len(section) == limits.kept_bytes and rest == b"QUIT\r\n"


def test_unstuffing_removes_one_leading_dot_per_line():
    assert unstuff(b"..a\r\n.b\r\n...c\r\nd.\r\n") == b".a\r\nb\r\n..c\r\nd.\r\n"
