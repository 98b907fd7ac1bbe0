"""Retained raw mail without the attachments stored beside it (issue 18 point 4): back byte for byte."""

import base64
import hashlib
import importlib.util
import json
import random
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from inboxhub.lib.mail.compact_raw import PREFIX, RestoreError, compact, is_compacted, restore
from inboxhub.lib.mail.parsing import parse_message
from tests.corpora import CORPORA

SAMPLES = Path(__file__).parent / "samples"
BENCH_INGEST = Path(__file__).resolve().parents[2] / "bench" / "ingest.py"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def base64_payloads(raw: bytes) -> dict[str, bytes]:
    """Every base64 leaf's decoded bytes by sha256, as the email package reads them."""
    payloads = {}
    for part in message_from_bytes(raw, policy=policy.compat32).walk():
        if part.is_multipart() or str(part.get("content-transfer-encoding", "")).strip().lower() != "base64":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            payloads[sha(payload)] = payload
    return payloads


def nothing_stored(sha256: str) -> bool:
    return False


class Loads:
    """A `load` that gives the payloads it was handed and remembers what it was asked for."""

    def __init__(self, payloads: dict[str, bytes]):
        self.payloads = payloads
        self.asked: list[str] = []

    def __call__(self, sha256: str) -> bytes:
        self.asked.append(sha256)
        return self.payloads[sha256]


def round_trip(raw: bytes, payloads: dict[str, bytes]) -> tuple[bytes, Loads]:
    compacted = compact(raw, payloads.__contains__)
    if compacted is raw:
        return compacted, Loads(payloads)
    loads = Loads(payloads)
    assert restore(compacted, loads) == raw
    return compacted, loads


def with_attachment(data: bytes, *, filename: str = "invoice.pdf") -> EmailMessage:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Ingrid <ingrid@kund.example>"
    msg["To"] = "support@alpha.example"
    msg["Subject"] = "Invoice"
    msg.set_content("See the attachment.\n")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return msg


PDF = random.Random(18).randbytes(20_000)


def single_part(body: bytes, eol: bytes = b"\r\n") -> bytes:
    headers = [
        b"From: ingrid@kund.example",
        b"Content-Type: application/pdf",
        b"Content-Transfer-Encoding: base64",
    ]
    return eol.join(headers) + eol + eol + body


def wrapped(data: bytes, line: int, eol: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return eol.join(encoded[i : i + line] for i in range(0, len(encoded), line))


# --- every real mail comes back ---


def corpus_mails() -> list:
    mails = [
        pytest.param(path.read_bytes(), id=str(path.relative_to(SAMPLES)))
        for path in sorted(SAMPLES.rglob("*.eml"))
    ]
    if CORPORA.is_dir():
        paths = sorted(CORPORA.glob("*/**/*.eml")) + sorted((CORPORA / "cpython-email").glob("msg_*.txt"))
        mails += [pytest.param(path.read_bytes(), id=str(path.relative_to(CORPORA))) for path in paths]
        for case in json.loads((CORPORA / "cpython-email" / "defect_cases.json").read_text()):
            mails.append(pytest.param(case["source"].encode("utf-8", "surrogateescape"), id=case["id"]))
    return mails


@pytest.mark.parametrize("line_endings", ["as stored", "crlf"])
@pytest.mark.parametrize("raw", corpus_mails())
def test_every_sample_and_corpus_mail_comes_back_byte_for_byte(raw, line_endings):
    if line_endings == "crlf":  # as SMTP delivers it
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    compacted, loads = round_trip(raw, base64_payloads(raw))
    assert set(loads.asked) <= set(base64_payloads(raw))
    assert compact(raw, nothing_stored) is raw


def test_the_corpora_are_there_or_these_tests_say_so():
    if not CORPORA.is_dir():
        pytest.skip(f"the shared corpora are not at {CORPORA}: only the suite's own samples were compacted")
    assert len(corpus_mails()) > 100


def test_the_corpus_attachments_are_cut_out_and_loaded_back():
    raw = (SAMPLES / "forwards" / "outlook_web_en.eml").read_bytes()
    payloads = base64_payloads(raw)
    compacted, loads = round_trip(raw, payloads)
    assert len(compacted) < len(raw) * 0.6
    assert sorted(set(loads.asked)) == sorted(payloads)


@pytest.fixture(scope="module")
def bench_mix():
    """300 messages of bench/ingest.py's mix, DKIM-signed, as bench/worker_profile.py generates them."""
    spec = importlib.util.spec_from_file_location("bench_ingest", BENCH_INGEST)
    mix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mix)
    return mix.plan_messages(
        300,
        seed=4,
        addresses=["support@acme.in.example", "help@globex.in.example"],
        member=("Ada Lovelace", "ada@acme.example"),
        keys=mix.generate_dkim_key(),
    )


def test_the_bench_mix_comes_back_byte_for_byte_without_its_stored_attachments(bench_mix, capsys):
    before = after = 0
    for planned in bench_mix:
        assert planned.raw.startswith(b"DKIM-Signature:")
        # What the message's Attachment rows would hold: the product parser's attachments.
        stored = {sha(a.payload): a.payload for a in parse_message(planned.raw).attachments}
        compacted, loads = round_trip(planned.raw, stored)
        assert sorted(set(loads.asked)) == sorted(stored)
        if planned.kind == "attachment":
            assert len(compacted) < 5_000 < 50_000 < len(planned.raw)
        else:
            assert compacted is planned.raw
        before += len(planned.raw)
        after += len(compacted)
    with capsys.disabled():
        saved = 100 - 100 * after // before
        print(f"\nbench mix, {len(bench_mix)} messages: {before} -> {after} bytes ({saved}% saved)")
    assert any(planned.kind == "attachment" for planned in bench_mix)


def test_the_bench_mix_with_every_base64_part_stored_comes_back(bench_mix):
    for planned in bench_mix:
        round_trip(planned.raw, base64_payloads(planned.raw))
        assert compact(planned.raw, nothing_stored) is planned.raw


# --- what real mail varies in ---


@pytest.mark.parametrize("line", [76, 72, 64, 60])
@pytest.mark.parametrize("eol", [b"\r\n", b"\n"])
def test_bodies_of_any_line_length_and_ending_are_cut_and_restored(line, eol):
    raw = single_part(wrapped(PDF, line, eol) + eol, eol)
    compacted, loads = round_trip(raw, {sha(PDF): PDF})
    assert len(compacted) < 1_000
    assert loads.asked == [sha(PDF)]


def test_a_body_on_one_line_without_a_final_line_ending_is_cut_and_restored():
    raw = single_part(base64.b64encode(PDF))
    compacted, _ = round_trip(raw, {sha(PDF): PDF})
    assert len(compacted) < 1_000


def test_blank_lines_after_the_body_and_before_the_delimiter_stay():
    raw = bytes(with_attachment(PDF)).replace(b"\r\n--===", b"\r\n\r\n\r\n--===")
    compacted, _ = round_trip(raw, {sha(PDF): PDF})
    assert len(compacted) < 2_000


def test_an_attachment_inside_an_attached_message_inside_nested_multiparts_is_cut():
    inner = with_attachment(PDF)
    outer = EmailMessage(policy=policy.SMTP)
    outer["Subject"] = "Fwd: Invoice"
    outer.set_content("Forwarding.\n")
    outer.add_alternative("<p>Forwarding.</p>\n", subtype="html")
    outer.add_attachment(inner)
    raw = bytes(outer)
    assert b"message/rfc822" in raw
    compacted, loads = round_trip(raw, {sha(PDF): PDF})
    assert len(compacted) < 3_000
    assert loads.asked == [sha(PDF)]


def test_the_same_attachment_twice_is_cut_twice_and_loaded_once():
    msg = with_attachment(PDF)
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="copy.pdf")
    compacted, loads = round_trip(bytes(msg), {sha(PDF): PDF})
    assert len(compacted) < 3_000
    assert loads.asked == [sha(PDF)]


def test_only_attachments_said_to_be_stored_are_cut():
    other = random.Random(2).randbytes(5_000)
    msg = with_attachment(PDF)
    msg.add_attachment(other, maintype="image", subtype="png", filename="logo.png")
    raw = bytes(msg)
    compacted, loads = round_trip(raw, {sha(PDF): PDF})
    assert base64.b64encode(other)[:76] in compacted
    assert base64.b64encode(PDF)[:76] not in compacted
    assert loads.asked == [sha(PDF)]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(wrapped(PDF, 76, b"\r\n").replace(b"\r\n", b" \r\n", 3), id="spaces at some line ends"),
        pytest.param(wrapped(PDF, 76, b"\r\n").replace(b"\r\n", b"", 1), id="one line twice as long"),
        pytest.param(wrapped(PDF, 76, b"\r\n").replace(b"\r\n", b"\n", 1), id="mixed line endings"),
        pytest.param(wrapped(PDF, 76, b"\r\n").rstrip(b"=") + b"\r\n", id="padding missing"),
        pytest.param(b"\r\n" + wrapped(PDF, 76, b"\r\n"), id="a blank line first"),
        pytest.param(base64.b64encode(PDF + b"x")[:-2] + b"Z=", id="non-zero padding bits"),
    ],
)
def test_a_body_that_would_not_re_encode_the_same_stays_as_it_is(body):
    raw = single_part(body)
    assert compact(raw, lambda sha256: True) is raw


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda raw: raw.replace(b"See the", b"See\rthe"), id="a bare CR"),
        pytest.param(
            lambda raw: raw.replace(b"Subject:", b"Content-Type: text/plain\r\nSubject:"), id="two types"
        ),
        pytest.param(
            lambda raw: raw.replace(b"Subject: Invoice\r\n", b"Subject Invoice\r\n"), id="not a header"
        ),
        pytest.param(lambda raw: raw[: raw.rindex(b"\r\n--")] + b"\r\n", id="no close delimiter"),
    ],
)
def test_mail_that_cannot_be_walked_with_certainty_stays_as_it_is(change):
    raw = change(bytes(with_attachment(PDF)))
    assert compact(raw, lambda sha256: True) is raw


def test_an_inner_boundary_equal_to_the_outer_one_stays_as_it_is():
    [case] = [c for c in json.loads(defect_cases()) if c["id"] == "test_same_boundary_inner_outer"]
    raw = case["source"].encode().replace(b"Some removed base64 encoded chars.", wrapped(PDF, 76, b"\n"))
    assert compact(raw, lambda sha256: True) is raw


def defect_cases() -> str:
    path = CORPORA / "cpython-email" / "defect_cases.json"
    if not path.exists():
        pytest.skip(f"the shared corpora are not at {CORPORA}")
    return path.read_text()


def test_preamble_and_epilogue_stay_even_when_they_look_like_parts():
    msg = with_attachment(PDF)
    msg.preamble = "Not MIME?\n" + wrapped(PDF, 76, b"\n").decode()
    msg.epilogue = "--fake\nContent-Transfer-Encoding: base64\n\n" + wrapped(PDF, 76, b"\n").decode()
    raw = bytes(msg)
    compacted, loads = round_trip(raw, {sha(PDF): PDF})
    assert compacted.count(wrapped(PDF, 76, b"\r\n")) == 2
    assert loads.asked == [sha(PDF)]


def test_deep_nesting_stays_as_it_is_without_an_error():
    raw = b"".join(f"Content-Type: multipart/mixed; boundary=b{n}\n\n--b{n}\n".encode() for n in range(2_000))
    raw += single_part(wrapped(PDF, 76, b"\n"), b"\n")
    assert compact(raw, lambda sha256: True) is raw


# --- markers a sender cannot forge ---


def forged_mail(genuine_attachment: bool) -> tuple[bytes, str]:
    """A mail that begins with the header line and quotes a placeholder, naming another attachment."""
    other = random.Random(3).randbytes(10_000)
    forged_header = {
        "parts": [{"at": 0, "bytes": 13_336, "eol": "crlf", "line": 76, "sha256": sha(other)}],
        "sha256": sha(b""),
        "size": 0,
    }
    msg = with_attachment(PDF) if genuine_attachment else EmailMessage(policy=policy.SMTP)
    if not genuine_attachment:
        msg.set_content("Hello\n")
    body = PREFIX + json.dumps(forged_header).encode() + b"\r\n" + bytes(msg)
    body += f"[base64 body kept as the attachment with sha256 {sha(other)}]\r\n".encode()
    return body, sha(other)


def test_a_mail_forging_the_marker_comes_back_unchanged_and_loads_nothing():
    raw, forged_sha = forged_mail(genuine_attachment=False)
    compacted = compact(raw, lambda sha256: True)
    assert is_compacted(compacted)  # wrapped, so that nothing the sender wrote is read as a marker
    loads = Loads({})
    assert restore(compacted, loads) == raw
    assert loads.asked == []


def test_a_forged_marker_beside_a_real_attachment_loads_only_the_real_one():
    raw, forged_sha = forged_mail(genuine_attachment=True)
    compacted, loads = round_trip(raw, {sha(PDF): PDF, forged_sha: b"never asked"})
    assert loads.asked == [sha(PDF)]


def test_uncompacted_mail_is_refused_by_restore_even_when_it_looks_compacted():
    raw, _ = forged_mail(genuine_attachment=False)
    loads = Loads({})
    with pytest.raises(RestoreError, match="damaged: no placeholder"):
        restore(raw, loads)
    assert loads.asked == []
    with pytest.raises(RestoreError, match="not compacted raw mail"):
        restore(bytes(with_attachment(PDF)), loads)


def test_is_compacted_says_what_compact_did():
    raw = bytes(with_attachment(PDF))
    assert not is_compacted(raw)
    assert is_compacted(compact(raw, {sha(PDF)}.__contains__))
    assert not is_compacted(compact(raw, nothing_stored))


# --- never other bytes ---


def test_a_missing_payload_raises():
    compacted = compact(bytes(with_attachment(PDF)), {sha(PDF)}.__contains__)

    def load(sha256: str) -> bytes:
        raise FileNotFoundError(f"attachments/{sha256}")

    with pytest.raises(RestoreError, match=f"sha256 {sha(PDF)} could not be loaded: FileNotFoundError"):
        restore(compacted, load)


def test_a_changed_payload_raises():
    compacted = compact(bytes(with_attachment(PDF)), {sha(PDF)}.__contains__)
    with pytest.raises(RestoreError, match=f"sha256 {sha(PDF)} has changed"):
        restore(compacted, lambda sha256: PDF[:-1] + b"!")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[:-1], id="truncated"),
        pytest.param(lambda data: data.replace(b"See the", b"See da"), id="a byte changed"),
        pytest.param(lambda data: data.replace(b'"at":', b'"at":1'), id="an offset changed"),
        pytest.param(lambda data: data.replace(b'"line":76', b'"line":72'), id="a line length changed"),
        pytest.param(lambda data: data.replace(b"\r\n", b"\n", 1), id="header line ending"),
    ],
)
def test_damaged_compacted_mail_raises(damage):
    compacted = compact(bytes(with_attachment(PDF)), {sha(PDF)}.__contains__)
    with pytest.raises(RestoreError):
        restore(damage(compacted), {sha(PDF): PDF}.__getitem__)


def test_mangled_mail_comes_back_byte_for_byte():
    """Bytes inserted, deleted and changed at random (fixed seed) in mail with attachments and nesting."""
    rng = random.Random(7)
    outer = EmailMessage(policy=policy.SMTP)
    outer.set_content("See the attachments.\n")
    outer.add_alternative("<p>See the attachments.</p>\n", subtype="html")
    outer.add_attachment(rng.randbytes(3_000), maintype="application", subtype="pdf", filename="a.pdf")
    outer.add_attachment(with_attachment(rng.randbytes(2_000), filename="inner.pdf"))
    seeds = [bytes(outer), bytes(outer).replace(b"\r\n", b"\n")]
    pieces = [
        b"\r\n",
        b"\n",
        b"\r",
        b"--",
        b"=",
        b"\r\n\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        PREFIX,
    ]
    compacted_count = 0
    for _ in range(1_500):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(raw))
            if rng.random() < 0.5:
                raw[at:at] = rng.choice(pieces)
            else:
                raw[at : at + rng.randint(1, 20)] = rng.randbytes(rng.randint(0, 2))
        compacted, _ = round_trip(bytes(raw), base64_payloads(bytes(raw)))
        compacted_count += is_compacted(compacted)
    assert compacted_count > 500
