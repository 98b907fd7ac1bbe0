"""Forward detection: InboxHub's reader against email-forward-parser alone, on every forward sample.

    .venv/bin/python bench/forwards.py [--details]

Forwards, each with the original sender it must give (email and display name):
- the repository's samples (tests/channels_conn/samples: six clients in five languages, an
  Italian Gmail forward, an attached one);
- InboxHub's own forwards per client x language (tests/fixtures/forwards/, expected.json);
- the forwards of the shared corpora (../shared/corpora, when present): django-helpdesk's
  forwarded-message.eml and utf-nondecodable.eml (Thunderbird), cpython-email's message/rfc822 ones.
Not forwards: the repository's replies and prefix-only samples, the hostile samples, the
machine mail fixtures, tests/fixtures/forwards/not_forwards/, and every other message of the
shared corpora (talon's replies, cpython-email, django-helpdesk; talon's HTML replies wrapped
as "Re: Test" mails).

"ours" is `parse_message(raw).forwarded`; "library" is email-forward-parser alone at its best:
`get_forwarded_metadata` on the same text the product reads, with the subject and then without
it, else its client's reading of an attached message (bounces and digests left out, as ours).
A sender is right when its email (lower case) and its display name (whitespace folded) are the
expected ones. A false forward is a forward with a sender found on a message that is not one.
Prints one JSON line; --details adds each miss.
"""

import argparse
import json
import logging
import re
import sys
import time
from collections import defaultdict
from email import policy
from email.parser import BytesParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emailforwardparser import forward_parser  # noqa: E402
from emailforwardparser.client import EmailParserClient  # noqa: E402

from inboxhub.lib.mail.parsing import parse_message  # noqa: E402
from tests.corpora import CORPORA  # noqa: E402

SAMPLES = ROOT / "tests" / "channels_conn" / "samples"
FIXTURES = ROOT / "tests" / "fixtures"
FAMILIES = re.compile(
    r"^(new_outlook|outlook_web|outlook_2019|thunderbird|apple_mail|gmail|yahoo|mailmate|mailto|name_only"
    r"|webmailer|attached)"
)
# The shared corpora's forwards, and the sender each names.
CORPUS_FORWARDS = {
    "django-helpdesk/forwarded-message.eml": ("GitHub", "noreply@github.com"),
    "cpython-email/msg_06.txt": ("Barry A. Warsaw", "barry@python.org"),
    "cpython-email/msg_46.txt": ("Dr. Sender", "sender@example.net"),
    "django-helpdesk/utf-nondecodable.eml": ("Nikola", "nikola@example.cz"),
}


def forwards() -> list[tuple[str, str, bytes, tuple[str, str], str]]:
    """(set, file, raw, (name, email), language) for every forward with a known original sender."""
    found = []
    expected = json.loads((SAMPLES / "forwards" / "expected.json").read_text("utf-8"))
    for name, facts in sorted(expected.items()):
        raw = (SAMPLES / "forwards" / name).read_bytes()
        sender = (facts["sender_name"], facts["sender_email"])
        found.append((f"repo:{facts['client']}", name, raw, sender, facts.get("language", "?")))
    ingrid = ("Ingrid Svensson", "ingrid.svensson@kund.example")
    for name, kind in (("generic_gmail_it.eml", "repo:gmail"), ("rfc822_forward.eml", "repo:attached")):
        found.append((kind, name, (SAMPLES / "other" / name).read_bytes(), ingrid, "?"))
    own = json.loads((FIXTURES / "forwards" / "expected.json").read_text("utf-8"))
    for name, facts in sorted(own.items()):
        family = FAMILIES.match(name)
        kind = f"own:{family.group(1) if family else facts['client']}"
        raw = (FIXTURES / "forwards" / name).read_bytes()
        sender = (facts["sender_name"], facts["sender_email"])
        found.append((kind, name, raw, sender, facts.get("language", "?")))
    for name, sender in CORPUS_FORWARDS.items():
        if (CORPORA / name).is_file():
            found.append(("corpora", name, (CORPORA / name).read_bytes(), sender, "?"))
    return found


def not_forwards() -> list[tuple[str, bytes]]:
    """(file, raw) for every message that is not a forward."""
    paths = [p for p in (SAMPLES / "other").glob("*.eml") if p.name.startswith(("reply_", "prefix_only"))]
    paths += list((SAMPLES / "hostile").glob("*.eml"))
    paths += list((FIXTURES / "mail").glob("*.eml"))
    paths += list((FIXTURES / "forwards" / "not_forwards").glob("*.eml"))
    if CORPORA.is_dir():
        paths += list(CORPORA.glob("cpython-email/msg_*.txt"))
        paths += list(CORPORA.glob("talon/standard_replies/*.eml"))
        paths += list(CORPORA.glob("django-helpdesk/*.eml"))
    messages = [
        (str(p.relative_to(CORPORA) if p.is_relative_to(CORPORA) else p.relative_to(ROOT)), p.read_bytes())
        for p in sorted(paths)
    ]
    messages = [(name, raw) for name, raw in messages if name not in CORPUS_FORWARDS]
    for page in sorted(CORPORA.glob("talon/html_replies/*.html")) if CORPORA.is_dir() else []:
        head = b'From: me@example.com\nSubject: Re: Test\nContent-Type: text/html; charset="utf-8"\n\n'
        messages.append((str(page.relative_to(CORPORA)), head + page.read_bytes()))
    return messages


def ours(raw: bytes) -> tuple[str, str] | None:
    original = parse_message(raw).forwarded
    if original is None or not (original.sender.email or original.sender.name):
        return None
    return original.sender.name, original.sender.email


_LIBRARY = EmailParserClient()
logging.getLogger("emailforwardparser").setLevel(logging.CRITICAL)  # it logs each part it cannot decode


def library(raw: bytes) -> tuple[str, str] | None:
    """email-forward-parser at its best: on the text the product reads (the HTML made text when there
    is no text part), with the subject, then without it; else its reading of an attached .eml."""
    parsed = parse_message(raw)
    for subject in (parsed.subject, None):
        result = _metadata(parsed.text, subject)
        sender = result.email.from_ if result else None
        if result and sender and result.forwarded and (sender.address or sender.name):
            return sender.name, sender.address
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        attached = next((p for p in message.walk() if p.get_content_type() == "message/rfc822"), None)
        if attached is None or message.get_content_type() in ("multipart/report", "multipart/digest"):
            return None
        sender = _LIBRARY._get_message_metadata(attached.get_payload(0)).from_
    except Exception:
        return None
    return (sender.name, sender.address) if sender.address else None


def _metadata(text: str, subject: str | None) -> forward_parser.ForwardMetadata | None:
    try:
        return forward_parser.get_forwarded_metadata(text, subject)
    except Exception:
        return None


def right(got: tuple[str, str] | None, expected: tuple[str, str]) -> bool:
    if got is None:
        return False
    name, email = (" ".join(part.strip().strip("\"'").split()) for part in got)
    want_name, want_email = expected
    name_right = name.casefold() == want_name.casefold() or (
        not want_name and name.lower() in ("", email.lower())
    )
    return email.lower() == want_email.lower() and name_right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true", help="list each miss and false forward")
    args = parser.parse_args()
    started = time.perf_counter()
    per_set: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses: dict[str, list] = {"ours": [], "library": []}
    library_right_ours_wrong = []
    per_language: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for kind, name, raw, expected, language in forwards():
        counts = per_set[kind]
        counts["n"] += 1
        per_language[language]["n"] += 1
        per_language[language]["ours"] += right(ours(raw), expected)
        per_language[language]["library"] += right(library(raw), expected)
        for who, read in (("ours", ours), ("library", library)):
            got = read(raw)
            counts[f"{who}_found"] += got is not None
            counts[f"{who}_right"] += right(got, expected)
            if not right(got, expected):
                misses[who].append({"file": name, "got": got, "expected": expected})
        if right(library(raw), expected) and not right(ours(raw), expected):
            library_right_ours_wrong.append(name)
    false_forwards: dict[str, list] = {"ours": [], "library": []}
    negatives = not_forwards()
    for name, raw in negatives:
        for who, read in (("ours", ours), ("library", library)):
            if read(raw) is not None:
                false_forwards[who].append(name)

    def share(sets: list[str], who: str) -> dict:
        n = sum(per_set[s]["n"] for s in sets)
        sender_right = sum(per_set[s][f"{who}_right"] for s in sets)
        found = sum(per_set[s][f"{who}_found"] for s in sets)
        return {"n": n, "found": found, "sender_right": sender_right, "accuracy": round(sender_right / n, 3)}

    def by_source(prefix: str) -> list[str]:
        return [s for s in per_set if s.startswith(prefix)]

    inline = [s for s in per_set if not s.endswith(("attached", "corpora"))]
    attached = [s for s in per_set if s.endswith("attached")]
    report = {
        "inline": {"ours": share(inline, "ours"), "library": share(inline, "library")},
        "attached": {"ours": share(attached, "ours"), "library": share(attached, "library")},
        "own_fixtures": {
            "ours": share(by_source("own:"), "ours"),
            "library": share(by_source("own:"), "library"),
        },
        "repo_samples": {
            "ours": share(by_source("repo:"), "ours"),
            "library": share(by_source("repo:"), "library"),
        },
        "corpora": {
            "ours": share(by_source("corpora"), "ours"),
            "library": share(by_source("corpora"), "library"),
        },
        "by_set": {
            kind: {"n": c["n"], "ours": c["ours_right"], "library": c["library_right"]}
            for kind, c in sorted(per_set.items())
        },
        "by_language": {language: dict(c) for language, c in sorted(per_language.items())},
        "false_forwards": {
            "not_forwards": len(negatives),
            "ours": len(false_forwards["ours"]),
            "library": len(false_forwards["library"]),
        },
        "library_right_ours_wrong": library_right_ours_wrong,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.details:
        report["misses"] = misses
        report["false_forward_files"] = false_forwards
    line = json.dumps(report, ensure_ascii=False)
    sys.stdout.buffer.write(line.encode("utf-8", "backslashreplace") + b"\n")


if __name__ == "__main__":
    main()
