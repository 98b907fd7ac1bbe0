"""Fuzz the mail pipeline on PostgreSQL with mutated real mail (issue 16, point 4).

Seeds: the repository's own samples, and the shared corpora when they sit beside the
checkout (`tests/corpora.py`; the run keeps to the repository's samples without them).
A seeded mutator truncates, flips bits, inserts control characters, breaks encodings and
grows huge headers; each mutant is spooled as the ingress does and processed once by the
real pipeline. Every row must end processed, its message stored, or failed for a reason
the product gives on purpose (an unreadable From) — never left for a retry by an error
the product could have handled. Reproducible: a failure names the seed and the mutant.
A longer run: INBOXHUB_FUZZ_MUTANTS=5000 INBOXHUB_FUZZ_SEED=7 pytest tests/inboxes/test_fuzz_pipeline.py
"""

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django_scopes import scope

from channels_conn.models import InboundMessage
from inboxes.models import Message
from inboxes.threads import normalise_message_id, synthetic_message_id
from inboxhub.lib.mail.parsing import parse_message
from ingest.pipeline import process_inbound_message
from tests.corpora import CORPORA
from tests.inboxes.helpers import address_of, spool

SEED = int(os.environ.get("INBOXHUB_FUZZ_SEED", "16"))
# About 50 ms each on a busy core: the default run takes 20-30 s.
MUTANTS = int(os.environ.get("INBOXHUB_FUZZ_MUTANTS", "300"))
TESTS = Path(__file__).parents[1]
# The one failure the product chooses for a message at fault (inboxes.receiving).
UNREADABLE_FROM = (
    "The sender could not be read unambiguously from the From header; the message was not logged to anyone."
)


def seeds() -> list[tuple[str, bytes]]:
    paths = sorted((TESTS / "channels_conn" / "samples").rglob("*.eml"))
    paths += sorted((TESTS / "fixtures").rglob("*.eml"))
    if CORPORA.is_dir():
        paths += sorted(CORPORA.glob("cpython-email/msg_*.txt"))
        paths += sorted(CORPORA.rglob("*.eml"))
    return [(str(path.relative_to(path.parents[1])), path.read_bytes()) for path in paths]


# --- the mutator: each takes the random source and the bytes, returns new bytes ---


def truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[: rng.randrange(len(raw) + 1)]


def flip_bits(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 16)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


CONTROL = [
    b"\x00",
    b"\x00\x00\x00",
    b"\x01",
    b"\x08",
    b"\x0b",
    b"\x0c",
    b"\x1b",
    b"\x7f",
    b"\r",
    b"\n",
    b"\x85",
]


def control_characters(rng: random.Random, raw: bytes) -> bytes:
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + rng.choice(CONTROL) + raw[at:]
    return raw


def nul_in_a_header(rng: random.Random, raw: bytes) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    lines = head.split(b"\n")
    index = rng.randrange(len(lines))
    line = lines[index]
    at = rng.randrange(len(line) + 1)
    lines[index] = line[:at] + b"\x00" + line[at:]
    return b"\n".join(lines) + sep + body


BROKEN = [
    (b"charset=", b'charset="x-nope" x-was='),
    (b"charset=", b'charset="utf\x00-8" x-was='),
    (b"Subject: ", b"Subject: =?x-nope?Q?caf=E9=00?= "),
    (b"Subject: ", b"Subject: =?utf-8?B?////?= \xe9\xff "),
    (b"From: ", b"From: =?x-nope?Q?Ad=E9?= "),
    (b"From: ", b"From: =?utf-8?Q?Ad=00?= "),
    (b"From: ", b"From: \xe9\xff\xc3 "),
    (b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: base64\r\n\r\n!!!===*"),
    (
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=0=00=ZZ",
    ),
    (b"Content-Type: ", b"Content-Type: text/plain; charset=\x00; x="),
    (b"filename=", b'filename="=?x-nope?Q?f=E9=00.pdf?=" x='),
    (b"boundary=", b'boundary="" x='),
]


def broken_encoding(rng: random.Random, raw: bytes) -> bytes:
    old, new = rng.choice(BROKEN)
    if old in raw:
        return raw.replace(old, new, 1)
    return new + b"\r\n" + raw


def huge_header(rng: random.Random, raw: bytes) -> bytes:
    kind = rng.randrange(3)
    if kind == 0:  # one long unfolded line
        header = b"X-Fuzz: " + b"a" * rng.randint(2_000, 120_000) + b"\r\n"
    elif kind == 1:  # a long folded Subject
        header = b"Subject: " + b"\r\n word" * rng.randint(1_000, 12_000) + b"\r\n"
    else:  # many headers
        header = b"Received: from relay.example by mx.example; Fri, 20 Nov 2026 09:30:00 +0000\r\n" * 1500
    return header + raw


def unclosed_parts(rng: random.Random, raw: bytes) -> bytes:
    end = raw.rfind(b"--\r\n")
    return raw[:end] if end > 0 else raw + b"\r\n--unclosed"


MUTATORS: list[Callable[[random.Random, bytes], bytes]] = [
    truncate,
    flip_bits,
    control_characters,
    nul_in_a_header,
    broken_encoding,
    huge_header,
    unclosed_parts,
]


def mutants(count: int, seed: int) -> list[tuple[str, bytes]]:
    """`count` mutants of the seeds, each named by its seed and mutations, the same for the same seed."""
    rng = random.Random(seed)
    sources = seeds()
    made = []
    for index in range(count):
        name, raw = sources[index % len(sources)]
        chosen = rng.sample(MUTATORS, rng.randint(1, 3))
        for mutate in chosen:
            raw = mutate(rng, raw)
        made.append((f"#{index} {name} <- {'+'.join(m.__name__ for m in chosen)}", raw))
    return made


def stored_message_id(row: InboundMessage) -> str:
    parsed = parse_message(bytes(row.raw))
    return normalise_message_id(parsed.message_id) or synthetic_message_id(parsed, row)


def test_the_mutants_differ_from_their_seeds_and_repeat_with_the_seed():
    made = mutants(50, SEED)
    originals = {raw for _, raw in seeds()}

    assert made == mutants(50, SEED)
    assert sum(raw not in originals for _, raw in made) >= 45


@pytest.mark.django_db
def test_no_mutated_mail_is_lost_or_failed_by_an_error_the_product_could_handle(inbox):
    assert connection.vendor == "postgresql"  # NUL in a text column fails only there
    to = address_of(inbox)
    wrong = []
    for name, raw in mutants(MUTANTS, SEED):
        row = spool(raw, to)
        outcome = process_inbound_message(row.pk)
        row.refresh_from_db()
        if outcome == InboundMessage.State.FAILED and row.error == UNREADABLE_FROM:
            continue
        if outcome != InboundMessage.State.PROCESSED:
            wrong.append(f"{name}: {outcome} {row.error[:300]!r}")
            continue
        with scope(account=inbox.account):
            if not Message.objects.filter(inbox=inbox, message_id=stored_message_id(row)).exists():
                wrong.append(f"{name}: processed but no message stored")

    assert wrong == [], f"seed {SEED}:\n" + "\n".join(wrong)
