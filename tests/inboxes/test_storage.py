"""Messages store their sender authentication compactly and still show it whole (issue 18 point 4).

A message keeps, of its verdict, only what its other fields do not say; rows stored before keep the
whole dictionary. The thread page shows both alike.
"""

import io
import ipaddress
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from inboxes.models import Message
from inboxes.search import forget_old_vectors
from inboxhub.lib.mail.authentication import AuthVerdict, Method
from ingest.pipeline import ingest_inbound
from tests.inboxes.helpers import CAROL, address_of, forward_of, parsed, raw_mail, receive, spool

DKIM_PASS = AuthVerdict(
    True,
    "customer.example",
    Method.DKIM,
    "dkim=pass (customer.example, aligned)",
    results={
        "from_domain": "customer.example",
        "dkim": [
            {"domain": "customer.example", "selector": "s1", "result": "pass", "reason": "", "aligned": True}
        ],
        "dmarc": {"result": "pass", "policy": "none"},
    },
)
SPF_PASS = AuthVerdict(
    True,
    "customer.example",
    Method.SPF,
    "spf=pass (customer.example, aligned)",
    results={
        "from_domain": "customer.example",
        "dkim": [],
        "spf": {"mailfrom": {"domain": "customer.example", "result": "pass", "aligned": True}},
        "dmarc": {"result": "pass", "policy": "quarantine"},
    },
)
RELAY = AuthVerdict(
    True,
    "customer.example",
    Method.TRUSTED_RELAY,
    "dmarc=pass (mx.inboxhub.example)",
    results={
        "from_domain": "customer.example",
        "authentication_results": {"authserv_id": "mx.inboxhub.example", "header": "mx.inboxhub.example; …"},
        "dmarc": [{"result": "pass", "domain": "customer.example", "policy": "reject"}],
    },
)
SPOOFED = AuthVerdict(
    False,
    "",
    Method.NONE,
    "dmarc=fail (p=reject)",
    spoofing_suspected=True,
    results={
        "from_domain": "customer.example",
        "dkim": [
            {"domain": "evil.example", "selector": "x", "result": "pass", "reason": "", "aligned": False}
        ],
        "spf": {"mailfrom": {"domain": "evil.example", "result": "fail", "aligned": False}},
        "dmarc": {"result": "fail", "policy": "reject"},
    },
)
NO_FROM_DOMAIN = AuthVerdict(False, "", Method.NONE, "no single From address", results={"from_domain": ""})
TRUSTED_NETWORK = AuthVerdict(
    True,
    "customer.example",
    Method.TRUSTED_NETWORK,
    "trusted network 192.0.2.0/24",
    results={"from_domain": "customer.example", "trusted_network": "192.0.2.0/24"},
)
VERDICTS = {
    "dkim": DKIM_PASS,
    "spf": SPF_PASS,
    "relay": RELAY,
    "spoofed": SPOOFED,
    "no_from_domain": NO_FROM_DOMAIN,
    "trusted_network": TRUSTED_NETWORK,
}
PANEL = re.compile(r'<details class="sender-auth.*?</details>', re.S)


def thread_panel(client, message: Message) -> str:
    url = reverse("inboxes:thread", args=[message.account.subdomain, message.conversation_id])
    [panel] = PANEL.findall(client.get(url).text)
    return panel


def stored_whole(message: Message, verdict: AuthVerdict) -> None:
    """The row as a message received before issue 18 has it: the whole verdict."""
    with scopes_disabled():
        Message.objects.filter(pk=message.pk).update(auth_results=verdict.as_dict())


@pytest.mark.parametrize("name", VERDICTS)
def test_an_old_row_and_a_new_row_show_the_same_authentication_panel(client, agent, inbox, name):
    verdict = VERDICTS[name]
    new = receive(inbox, parsed(), verdict=verdict)
    old = receive(inbox, parsed(), verdict=verdict)
    stored_whole(old, verdict)
    client.force_login(agent.user)

    new_panel = thread_panel(client, new)

    assert new_panel == thread_panel(client, old)
    assert verdict.reason in new_panel


def test_a_forwarded_message_keeps_the_forwarders_domain_apart_from_its_senders(client, agent, inbox):
    # Logged to Carol (customer.example), authenticated as the forwarder's domain.
    verdict = AuthVerdict(
        True,
        "alpha.example",
        Method.DKIM,
        "dkim=pass (alpha.example, aligned)",
        results={"from_domain": "alpha.example", "dkim": [], "dmarc": {"result": "pass", "policy": "none"}},
    )
    new = receive(inbox, forward_of(CAROL, by="alice@alpha.example"), verdict=verdict)
    old = receive(inbox, forward_of(CAROL, by="alice@alpha.example", message_id="f2@x"), verdict=verdict)
    stored_whole(old, verdict)
    client.force_login(agent.user)

    new_panel = thread_panel(client, new)

    assert "Sender verified as alpha.example" in new_panel
    assert new_panel == thread_panel(client, old)
    assert new.auth_details == verdict.as_dict()


@pytest.mark.parametrize("name", VERDICTS)
def test_the_stored_details_give_the_verdict_back_whole(inbox, name):
    verdict = VERDICTS[name]

    message = receive(inbox, parsed(), verdict=verdict)

    assert message.auth_details == verdict.as_dict()
    with scopes_disabled():
        assert Message.objects.get(pk=message.pk).auth_details == verdict.as_dict()


def test_mail_from_a_trusted_network_stores_nothing_the_row_already_says(client, settings, agent, inbox):
    settings.TRUSTED_NETWORKS = [ipaddress.ip_network("192.0.2.0/24")]
    to = address_of(inbox)
    ingest_inbound(spool(raw_mail(to=to), to))  # peer 192.0.2.10
    with scopes_disabled():
        message = Message.objects.get(account=inbox.account)
    client.force_login(agent.user)

    panel = thread_panel(client, message)

    assert message.auth_results == {}
    assert "<span>Sender verified as customer.example</span>" in panel
    assert "(trusted network 192.0.2.0/24)" in panel
    assert "<dt>Network</dt><dd>192.0.2.0/24 (trusted network)</dd>" in panel


def test_a_message_without_a_verdict_shows_no_panel(client, agent, inbox):
    message = receive(inbox, parsed())
    client.force_login(agent.user)
    url = reverse("inboxes:thread", args=[message.account.subdomain, message.conversation_id])

    text = client.get(url).text

    assert message.auth_details is None
    assert "sender-auth" not in text


# --- manage.py storage ---


def storage_report() -> dict:
    out = io.StringIO()
    call_command("storage", "--json", stdout=out)
    return json.loads(out.getvalue())


def stored_vector_bytes() -> dict[str, int]:
    return {row["account"]: row["search_vector_bytes"] for row in storage_report()["accounts"]}


def test_storage_reports_the_search_vectors_messages_still_store(admin, inbox):
    receive(inbox, parsed(text="A kettle, broken on arrival."))
    before = stored_vector_bytes()[admin.account.subdomain]
    with scopes_disabled():
        Message.objects.filter(account=inbox.account).update(created_at=timezone.now() - timedelta(days=90))

    forget_old_vectors()

    assert before > 0
    assert stored_vector_bytes()[admin.account.subdomain] == 0


def test_storage_lists_the_largest_tables_with_their_toast_and_indexes(admin, inbox):
    receive(inbox, parsed(text="x" * 5000))

    tables = {row["table"]: row for row in storage_report()["tables"]}
    text = io.StringIO()
    call_command("storage", stdout=text)

    assert tables["inboxes_message"]["index_bytes"] > 0
    assert tables["inboxes_message"]["heap_bytes"] > 0
    assert "inboxes_message" in text.getvalue()
