"""The SMTP ingress: accept mail for fallback addresses, commit it, then answer 250 (G1, G2).

Recipients are refused early at RCPT; DATA hands the bytes to
`channels_conn.spool.spool_inbound` in a database thread and answers 250 only
once the row is committed; the row's id goes to the broker after the reply,
with the other ids of its round, from a thread of its own (the sweep enqueues
whatever that loses). Every unexpected failure answers `451 4.3.0`, so a
sending MTA retries instead of bouncing.
"""

import asyncio
import contextvars
import functools
import logging
import queue
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session
from django.conf import settings
from django.db import connections

from channels_conn.recipients import RECIPIENT_OK, RecipientCache, check_recipient
from channels_conn.spool import connect_to_broker, enqueue_inbound_batch, spool_inbound, store_inbound
from inboxhub.celery import app as celery_app
from inboxhub.lib.mail import smtp_data

logger = logging.getLogger(__name__)

TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
TRY_AGAIN = "451 4.3.0 Error: local problem, please try again later"
ENQUEUE_GRACE_SECONDS = 10
# The publishing thread hands ids to the broker at most this often; ids committed meanwhile share the
# round, and a task per INGEST_BATCH_SIZE of them. A quiet ingress publishes each id at once.
ENQUEUE_INTERVAL_SECONDS = 0.05

# `<dot-atom@domain>` in ASCII (RFC 5321 Mailbox without quoting, literals or source routes).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE_ADDRESS = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>")

# aiosmtpd answers these with bare codes; RFC 3463 enhanced codes tell the sender why.
_REPLY_REWRITES = {
    "552 Error: Too much mail data": "552 5.3.4 Error: message too big for this system",
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Error: message size exceeds fixed maximum message size"
    ),
    "500 Line too long (see RFC5321 4.5.3.1.6)": "500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)",
}


class IngressSMTP(SMTP):
    """aiosmtpd's protocol with Postfix's body line limit and enhanced status codes."""

    # RFC 5321 allows 998 octets, but real mailers send longer HTML lines; Postfix takes 2048.
    # 2048 octets + CRLF + a transparency dot.
    line_length_limit = 2048 + 2 + 1

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, str):
            status = _REPLY_REWRITES.get(status, status)
        await super().push(status)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd 1.4's own declares a typing.Protocol class on every call, and the email package's
        # parser is slow for the plain `<local@domain>` nearly every MTA sends: together a sixth of the
        # CPU-bound ingress's time (issue 4). A plain address takes a regular expression; anything
        # else the same parser. tests/channels_conn/test_smtp_addresses.py holds both to the original.
        plain = _PLAIN_ANGLE_ADDRESS.match(arg)
        if plain is not None:
            addr, rest = plain.group(1), arg[plain.end() :]
            # The parser also eats the whitespace (and comments) after `>`; leave those cases to it.
            if not rest or (rest[0] == " " and rest[1:2] not in ("", " ", "\t", "(")):
                if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
                    return None, None
                return addr, rest[1:]
        if not arg:
            return "", ""
        try:
            parse = get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec
            address, rest = parse(arg)
            addr = address.addr_spec
        except (HeaderParseError, IndexError, AttributeError):
            # The parser also crashes on some garbage (`MAIL FROM:<`), which aiosmtpd answered with
            # 451 through handle_exception: a syntax error is permanent, so it gets aiosmtpd's 553.
            return None, None
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, rest

    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd's own, reading the section in bulk (inboxhub/lib/mail/smtp_data.py says why and how);
        # tests/channels_conn/test_smtp_data.py holds it to the installed aiosmtpd's.
        if self._decode_data:
            return await super().smtp_DATA(arg)
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return None
        if not self.envelope.rcpt_tos:
            return await self.push("503 Error: need RCPT command")
        if arg:
            return await self.push("501 Syntax: DATA")
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        limits = smtp_data.DataLimits(
            line_length_limit=self.line_length_limit, size_limit=self.data_size_limit
        )
        try:
            section, complete = await smtp_data.read_section(self._reader, limits)
        except asyncio.CancelledError:
            # The client went away mid-DATA: nothing is handed on.
            self._writer.close()
            raise
        refusal = smtp_data.refusal(section, limits, complete=complete)
        if refusal is not None:
            self._set_post_data_state()
            return await self.push(refusal)
        self.envelope.content = self.envelope.original_content = smtp_data.unstuff(section)
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        return await self.push("250 OK" if status is MISSING else status)


class Publisher:
    """Hands committed spool ids to the workers from a thread of its own, in rounds (G2, issue 4).

    A task message per id cost a quarter of the CPU-bound ingress's time; a
    round every ENQUEUE_INTERVAL_SECONDS at most sends what queued up since as
    a few batch tasks. Ids still queued when the ingress stops, or refused by
    the broker, are the sweep's: their rows are committed either way.
    """

    _STOP = object()

    def __init__(self, *, interval: float = ENQUEUE_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self.ids: queue.SimpleQueue = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="smtp-enqueue", daemon=True)
        self.thread.start()

    def put(self, inbound_id: int) -> bool:
        """Queue an id for the next round; False once stopping (the sweep enqueues the row)."""
        if self.stopping.is_set():
            return False
        self.ids.put(inbound_id)
        return True

    def stop(self, *, timeout: float = ENQUEUE_GRACE_SECONDS) -> None:
        """Send what is queued, giving the broker up to `timeout` seconds, then end the thread."""
        self.stopping.set()  # also cuts short a wait for the next round
        self.ids.put(self._STOP)
        self.thread.join(timeout)

    def _run(self) -> None:
        connect_to_broker()
        next_round = 0.0
        while True:
            first = self.ids.get()
            if first is self._STOP:
                return
            wait = next_round - time.monotonic()
            if wait > 0:
                self.stopping.wait(wait)
            batch, stop = [first], False
            while True:
                try:
                    item = self.ids.get_nowait()
                except queue.Empty:
                    break
                if item is self._STOP:
                    stop = True
                    break
                batch.append(item)
            next_round = time.monotonic() + self.interval
            enqueue_inbound_batch(batch)
            if stop:
                return


class IngressHandler:
    """aiosmtpd hooks; database work runs on a small pool of threads of its own, enqueuing on another."""

    def __init__(self, *, db_threads: int | None = None) -> None:
        self.db_threads = db_threads or settings.SMTP_DB_THREADS
        self.executor = ThreadPoolExecutor(max_workers=self.db_threads, thread_name_prefix="smtp-db")
        self.publisher = Publisher()
        self.recipients = RecipientCache()

    def _in_db_thread(self, func):
        # What sync_to_async(thread_sensitive=False, executor=…) does, minus its bookkeeping, which
        # showed in the CPU-bound ingress's profile (issue 4). Django's connections are per thread.
        async def call(*args, **kwargs):
            context = contextvars.copy_context()
            task = functools.partial(context.run, func, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self.executor, task)

        return call

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # aiosmtpd reads pipelined commands in order; RFC 2920 only asks that it be said.
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= settings.SMTP_MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        if any(address.lower() == known.lower() for known in envelope.rcpt_tos):
            return RECIPIENT_OK
        recipient = self.recipients.get(address)
        if recipient is None:
            recipient = await self._in_db_thread(check_recipient)(address)
            self.recipients.put(address, recipient)
        if recipient.accepted:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
            _accounts(envelope)[_text(address)] = recipient.account_id
        return recipient.reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer_ip = session.peer[0] if isinstance(session.peer, tuple) else None
        # Without a broker (tasks run eagerly, as without REDIS_URL) the task is the processing
        # itself: it runs in the database thread before the 250, as it always has.
        eager = celery_app.conf.task_always_eager
        try:
            rows = await self._in_db_thread(store_inbound if eager else spool_inbound)(
                raw=raw,
                # The null reverse-path of bounces and auto-replies is stored as "".
                mail_from="" if envelope.mail_from == "<>" else _text(envelope.mail_from),
                rcpt_tos=[_text(rcpt) for rcpt in envelope.rcpt_tos],
                peer_ip=peer_ip,
                helo=_text(session.host_name or ""),
                accounts=_accounts(envelope),
            )
        except Exception:
            # Nothing was committed: a transient refusal makes the sender retry later.
            logger.exception("could not spool a message from %s", peer_ip)
            return TRY_AGAIN
        # The rows are committed: the 250 need not wait for the broker's round trip.
        ids = [row.pk for row in rows]
        # Without a broker store_inbound has processed them already. Every id is put, even after a refusal.
        queued = [True] if eager else [self.publisher.put(pk) for pk in ids]
        if not all(queued):
            # Stopping: the sender still gets its 250; the sweep enqueues the rows.
            logger.warning("ingress stopping; inbound %s left to the sweep", ids)
        return f"250 2.0.0 Ok: queued as {' '.join(map(str, ids))}"

    async def handle_exception(self, error: Exception) -> str:
        # Without this hook aiosmtpd answers 500, which senders treat as a permanent bounce.
        logger.error("SMTP session failed", exc_info=error)
        return TRY_AGAIN

    def close(self) -> None:
        """Close each database thread's connection, then the threads."""
        barrier = threading.Barrier(self.db_threads)

        def close_connections() -> None:
            # The barrier puts one call on each thread, so every thread closes its own connection.
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            finally:
                connections.close_all()

        # Ids the broker has not taken within the grace time are left to the sweep rather than holding
        # the stop up.
        self.publisher.stop()
        wait_for_futures([self.executor.submit(close_connections) for _ in range(self.db_threads)])
        self.executor.shutdown(wait=True)


def _accounts(envelope: Envelope) -> dict[str, int]:
    """The account RCPT found for each accepted recipient of this transaction (a new envelope each)."""
    if not hasattr(envelope, "accounts"):
        envelope.accounts = {}
    return envelope.accounts


def _text(value: str) -> str:
    # SMTPUTF8 arguments arrive with surrogate escapes for undecodable bytes; keep what was sent.
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class IngressController(Controller):
    """Runs the ingress on its own thread and event loop (runsmtp and the tests)."""

    def __init__(self, *, host: str | None = None, port: int | None = None, **smtp_options) -> None:
        smtp_options.setdefault("data_size_limit", settings.MAX_MESSAGE_BYTES)
        smtp_options.setdefault("timeout", settings.SMTP_IDLE_TIMEOUT)
        smtp_options.setdefault("server_hostname", settings.SMTP_HOSTNAME)
        super().__init__(
            IngressHandler(),
            hostname=host or settings.SMTP_INGRESS_HOST,
            port=port or settings.SMTP_INGRESS_PORT,
            decode_data=False,  # raw bytes; also what makes aiosmtpd advertise 8BITMIME
            enable_SMTPUTF8=True,
            **smtp_options,
        )

    def factory(self) -> IngressSMTP:
        return IngressSMTP(self.handler, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        super().stop(no_assert=no_assert)
        self.handler.close()


def serve(*, host: str, port: int, stop: threading.Event) -> None:
    """Run the ingress until `stop` is set."""
    controller = IngressController(host=host, port=port)
    controller.start()
    logger.info("SMTP ingress listening on %s:%s", host, port)
    try:
        stop.wait()
    finally:
        controller.stop()
