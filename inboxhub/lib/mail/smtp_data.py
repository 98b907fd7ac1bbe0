"""Reading an SMTP DATA section in bulk, with the rules aiosmtpd 1.4.6 applies line by line (G1, B4).

aiosmtpd awaits one `readuntil(b"\\r\\n")` per line and checks each in Python: a
quarter of the CPU-bound ingress's time on a 50 KB attachment (issue 4). Here
the reader is asked for whole stretches that end in `.<CRLF>`, and the checks
run over the section at once. What stays the same, and is held to aiosmtpd by
tests/channels_conn/test_smtp_data.py:
- only CRLF ends a line, and only a line that is a lone dot ends the data, so
  bare-LF and bare-CR tricks never end it early (SMTP smuggling);
- nothing after the end line is consumed, so pipelined commands survive;
- a leading dot is removed from each line (RFC 5321 4.5.2);
- a line over the limits answers 500, a section over the size limit 552,
  whichever came first in the stream, and only after the end line;
- at most the size limit and a line are kept in memory, whatever is sent.
"""

import asyncio
from dataclasses import dataclass

END_LINE = b".\r\n"
CRLF = b"\r\n"
TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
TOO_MUCH = "552 Error: Too much mail data"


@dataclass(frozen=True)
class DataLimits:
    """aiosmtpd's limits: its reader buffers at most `line_length_limit` octets of a line."""

    line_length_limit: int
    size_limit: int | None

    @property
    def kept_bytes(self) -> int | None:
        # Enough to decide the reply: every line that starts within the size limit either ends within
        # this or is longer than the reader's limit.
        if not self.size_limit:
            return None
        return self.size_limit + self.line_length_limit + 3


async def read_section(reader: asyncio.StreamReader, limits: DataLimits) -> tuple[bytes, bool]:
    """Read up to and including the end line; return the section before it and whether all of it was kept.

    The section is the bytes as sent (dot-stuffed), cut at `limits.kept_bytes`.
    """
    kept = bytearray()
    cap = limits.kept_bytes
    complete = True
    last_two = CRLF  # the DATA command's own line ended just before the section
    while True:
        try:
            chunk = await reader.readuntil(END_LINE)
            ends_with_dot_line = True
        except asyncio.LimitOverrunError as overrun:
            # The reader stops looking past its limit: the `consumed` bytes hold no end line.
            chunk = await reader.read(overrun.consumed)
            ends_with_dot_line = False
        if complete:
            if cap is not None and len(kept) + len(chunk) > cap:
                kept += chunk[: cap - len(kept)]
                complete = False
            else:
                kept += chunk
        # The dot line ends the data only if a CRLF came right before it (or the section is empty).
        seen = chunk if len(chunk) >= 5 else last_two + chunk
        if ends_with_dot_line and seen[-5:-3] == CRLF:
            if complete:
                del kept[-len(END_LINE) :]
            return bytes(kept), complete
        last_two = seen[-2:]


def refusal(section: bytes, limits: DataLimits, *, complete: bool) -> str | None:
    """The reply that refuses the section, or None to accept it."""
    longest_allowed = limits.line_length_limit - len(CRLF)
    if (
        complete
        and (not limits.size_limit or len(section) <= limits.size_limit)
        and (len(section) <= longest_allowed or max(map(len, section.split(CRLF))) <= longest_allowed)
    ):
        return None
    # Something is over a limit: which one aiosmtpd would have met first decides the reply.
    lines = section.split(CRLF)
    partial = b"" if complete else lines[-1]
    received = 0
    for line in lines[:-1]:
        if len(line) > limits.line_length_limit:  # more than the reader holds
            return TOO_LONG
        received += len(line) + len(CRLF)
        if limits.size_limit and received > limits.size_limit:
            return TOO_MUCH
        if len(line) + len(CRLF) > limits.line_length_limit:
            return TOO_LONG
    if len(partial) > limits.line_length_limit:
        return TOO_LONG
    raise AssertionError("a section cut short is always over a limit")


def unstuff(section: bytes) -> bytes:
    """The message: the section with each line's leading transparency dot removed (RFC 5321 4.5.2)."""
    message = section.replace(b"\r\n.", CRLF)
    return message[1:] if message.startswith(b".") else message
