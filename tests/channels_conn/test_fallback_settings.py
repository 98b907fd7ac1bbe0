"""Fallback address editor, Configuration tab: from name and address, DNS, preview (C1–C8, C12)."""

import pytest
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from channels_conn.models import FallbackAddress
from channels_conn.selectors import effective_from
from channels_conn.services import update_fallback_address
from inboxes.models import Inbox
from inboxes.services import create_inbox
from inboxhub.models import AuditEntry, Membership
from tests.dnsserver import dns_server  # noqa: F401
from tests.factories import MembershipFactory

COMPANY_TAKEN = (
    "Another inbox's fallback address already uses the company name “{}”. "
    "Choose a different name so contacts can tell your inboxes apart."
)


def page_url(inbox: Inbox) -> str:
    return f"/a/{inbox.account.subdomain}/settings/inboxes/{inbox.pk}/fallback/"


def default_inbox(member: Membership) -> Inbox:
    return Inbox.objects.get(account=member.account, is_default=True)


def fallback_of(inbox: Inbox) -> FallbackAddress:
    with scopes_disabled():
        return FallbackAddress.objects.select_related("account").get(channel__inbox=inbox)


def payload(**overrides) -> dict:
    data = {
        "send_from": "on",
        "from_name_mode": "agent_and_company",
        "company_name": "Alpha",
        "from_address_mode": "default",
        "custom_from_address": "",
        "signature_html": "",
        "select_original_sender": "on",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


@pytest.fixture
def inbox(admin) -> Inbox:
    return default_inbox(admin)


@pytest.fixture
def signed_in(client, admin):
    client.force_login(admin.user)
    return client


@pytest.fixture
def dns(dns_server, settings):  # noqa: F811
    settings.DNS_NAMESERVERS = [dns_server.address]
    return dns_server


# --- the page ---------------------------------------------------------------------------------


def test_the_configuration_tab_shows_the_inbox_its_address_and_the_tabs(signed_in, inbox):
    r = signed_in.get(page_url(inbox))

    assert r.status_code == 200
    assert r.text.count("<h1") == 1
    assert "Fallback email address" in r.text
    assert fallback_of(inbox).address in r.text
    assert 'aria-current="page">Configuration</a>' in r.text
    assert f"/settings/inboxes/{inbox.pk}/fallback/automation/" in r.text
    assert f"/settings/inboxes/{inbox.pk}/fallback/tickets/" in r.text


def test_the_forwarding_address_has_a_copy_button_and_instructions(signed_in, inbox):
    address = fallback_of(inbox).address

    r = signed_in.get(page_url(inbox))

    assert f'data-copy="{address}"' in r.text
    assert "Forwarding and POP/IMAP" in r.text and "Enable forwarding" in r.text


def test_new_fallback_addresses_start_with_sending_on_and_original_sender_on(inbox):
    fallback = fallback_of(inbox)

    assert fallback.send_from is True
    assert fallback.select_original_sender is True
    assert fallback.from_address_mode == "default"
    assert fallback.company_name == "Alpha"


def test_an_agent_gets_403(client, agent, inbox):
    client.force_login(agent.user)

    assert client.get(page_url(inbox)).status_code == 403
    assert client.post(page_url(inbox), payload(company_name="Agent Co")).status_code == 403
    assert fallback_of(inbox).company_name == "Alpha"


def test_an_outsider_gets_404_and_the_address_is_unchanged(client, outsider, inbox):
    client.force_login(outsider.user)

    r = client.post(page_url(inbox), payload(company_name="Mallory", send_from=None))

    assert r.status_code == 404
    fallback = fallback_of(inbox)
    assert fallback.company_name == "Alpha" and fallback.send_from is True


def test_another_accounts_inbox_under_ones_own_subdomain_is_404(client, outsider, inbox):
    client.force_login(outsider.user)

    r = client.post(f"/a/bravo/settings/inboxes/{inbox.pk}/fallback/", payload(company_name="Mallory"))

    assert r.status_code == 404
    assert fallback_of(inbox).company_name == "Alpha"


# --- saving each setting (C1–C3, C6, C8, C12) --------------------------------------------------------


def test_saving_confirms_and_every_setting_is_kept(signed_in, inbox):
    r = signed_in.post(
        page_url(inbox),
        payload(
            send_from=None,
            from_name_mode="company",
            company_name="Alpha Support",
            signature_html='<p><b>{{full_name}}</b> · <font face="Georgia">Alpha</font></p>',
            select_original_sender=None,
        ),
        follow=True,
    )

    assert "Fallback address settings saved." in r.text
    fallback = fallback_of(inbox)
    assert fallback.send_from is False
    assert fallback.from_name_mode == "company"
    assert fallback.company_name == "Alpha Support"
    assert fallback.signature_html == '<p><b>{{full_name}}</b> · <font face="Georgia">Alpha</font></p>'
    assert fallback.select_original_sender is False
    page = signed_in.get(page_url(inbox)).text
    assert 'value="Alpha Support"' in page
    assert '<option value="company" selected>' in page
    assert 'id="id_send_from" aria-describedby="id_send_from_help" >' in page  # unchecked
    assert "&lt;font face=&quot;Georgia&quot;&gt;Alpha&lt;/font&gt;" in page  # in the HTML textarea


def test_turning_the_switches_back_on_is_kept(signed_in, inbox):
    signed_in.post(page_url(inbox), payload(send_from=None, select_original_sender=None))

    signed_in.post(page_url(inbox), payload())

    fallback = fallback_of(inbox)
    assert fallback.send_from is True and fallback.select_original_sender is True


def test_a_save_writes_an_audit_row_naming_the_changed_settings(signed_in, admin, inbox):
    signed_in.post(page_url(inbox), payload(company_name="Alpha Help", send_from=None))

    with scopes_disabled():
        entry = AuditEntry.objects.filter(account=admin.account).latest("pk")
    assert entry.action == "fallback_address_updated"
    assert entry.actor == admin
    assert entry.details == {"changed": ["company_name", "send_from"]}


def test_extra_posted_fields_are_ignored(signed_in, inbox):
    before = fallback_of(inbox)

    signed_in.post(
        page_url(inbox),
        payload(
            address="mallory@evil.example",
            local_part="x",
            account="999",
            custom_from_verified_at="2020-01-01",
        ),
    )

    after = fallback_of(inbox)
    assert after.address == before.address and after.local_part == before.local_part
    assert after.custom_from_verified_at is None


def test_an_empty_company_name_is_refused(signed_in, inbox):
    r = signed_in.post(page_url(inbox), payload(company_name="   "))

    assert r.status_code == 400
    assert "Enter the company name contacts will see." in r.text


def test_a_company_name_another_fallback_address_uses_is_refused_with_a_clear_message(
    signed_in, admin, inbox
):
    with scope(account=admin.account):
        sales = create_inbox(admin.account, name="Sales")
    assert fallback_of(sales).company_name == "Alpha Sales"

    r = signed_in.post(page_url(sales), payload(company_name="alpha"))

    assert r.status_code == 400
    assert COMPANY_TAKEN.format("alpha").replace("'", "&#x27;") in r.text
    assert "Nothing was saved" in r.text
    assert fallback_of(sales).company_name == "Alpha Sales"


def test_the_service_refuses_a_duplicate_company_name_too(admin, inbox):
    from django.core.exceptions import ValidationError

    with scope(account=admin.account):
        sales = create_inbox(admin.account, name="Sales")
        with pytest.raises(ValidationError) as refused:
            update_fallback_address(
                fallback_of(sales),
                send_from=True,
                from_name_mode="company",
                company_name="ALPHA",
                from_address_mode="default",
                custom_from_address="",
                signature_html="",
                select_original_sender=True,
                by=admin,
            )
    assert refused.value.message_dict == {"company_name": [COMPANY_TAKEN.format("ALPHA")]}


def test_the_same_company_name_in_another_account_is_fine(signed_in, outsider, inbox):
    r = signed_in.post(page_url(inbox), payload(company_name="Bravo"))

    assert r.status_code == 302
    assert fallback_of(inbox).company_name == "Bravo"


# --- from address (C4) -------------------------------------------------------------------------------


def test_an_invalid_custom_from_address_is_refused(signed_in, inbox):
    r = signed_in.post(page_url(inbox), payload(from_address_mode="custom", custom_from_address="support@"))

    assert r.status_code == 400
    assert "Enter an email address like support@yourcompany.com." in r.text
    assert fallback_of(inbox).custom_from_address == ""


def test_choosing_custom_without_an_address_is_refused(signed_in, inbox):
    r = signed_in.post(page_url(inbox), payload(from_address_mode="custom"))

    assert r.status_code == 400
    assert "Enter the address to send from, or choose “Use default”." in r.text
    assert fallback_of(inbox).from_address_mode == "default"


@pytest.mark.parametrize(
    "address",
    [
        "ceo@bravo.mail.localhost",
        "x@mail.localhost",
        "x@alpha.free-mail.localhost",
        "x@bravo.inbox.localhost",
    ],
)
def test_an_address_on_inboxhubs_own_domains_is_refused(signed_in, inbox, dns, address):
    r = signed_in.post(page_url(inbox), payload(from_address_mode="custom", custom_from_address=address))

    assert r.status_code == 400
    assert "belongs to InboxHub. Use an address on your own company" in r.text
    assert fallback_of(inbox).custom_from_address == ""
    assert sum(dns.queries.values()) == 0


def test_a_domain_without_mx_or_a_records_is_refused_with_the_reason(signed_in, inbox, dns):
    r = signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@nomail.example")
    )

    assert r.status_code == 400
    assert "nomail.example has no MX or A record in DNS, so replies to it could not be delivered." in r.text
    assert fallback_of(inbox).custom_from_address == ""


def test_a_domain_with_a_null_mx_is_refused(signed_in, inbox, dns):
    dns.add("nullmx.example", "MX", "0 .")

    r = signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@nullmx.example")
    )

    assert r.status_code == 400
    assert "nullmx.example says it accepts no email" in r.text


def test_a_domain_with_only_an_a_record_is_accepted(signed_in, inbox, dns):
    dns.add("web.example", "A", "192.0.2.10")

    r = signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@web.example")
    )

    assert r.status_code == 302
    assert fallback_of(inbox).custom_from_address == "help@web.example"


def test_a_dns_that_does_not_answer_gives_a_clear_message_not_a_crash(signed_in, inbox, dns):
    dns.answering = False

    r = signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@acme.example")
    )

    assert r.status_code == 400
    assert "We could not check DNS for acme.example right now. Please try again in a minute." in r.text
    assert fallback_of(inbox).custom_from_address == ""


def test_a_saved_custom_address_is_pending_and_the_default_is_used_meanwhile(signed_in, admin, inbox, dns):
    dns.add("acme.example", "MX", "10 mx.acme.example.")

    signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="Help@ACME.example")
    )

    fallback = fallback_of(inbox)
    assert fallback.custom_from_address == "Help@acme.example"
    assert fallback.custom_from_pending
    page = signed_in.get(page_url(inbox)).text
    assert "Pending verification" in page
    assert "&lt;alice@alpha.mail.localhost&gt;" in page
    with scope(account=admin.account):
        assert effective_from(fallback, admin) == ("Alice Admin at Alpha", "alice@alpha.mail.localhost")


def test_the_page_shows_the_domains_spf_and_dmarc_records(signed_in, inbox, dns):
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    dns.add_txt("acme.example", "v=spf1 include:_spf.mail.localhost -all")
    dns.add_txt("_dmarc.acme.example", "v=DMARC1; p=reject; rua=mailto:d@acme.example")
    signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@acme.example")
    )

    page = signed_in.get(page_url(inbox)).text

    assert "mx.acme.example" in page
    assert "<code>v=spf1 include:_spf.mail.localhost -all</code>" in page
    assert "<code>v=DMARC1; p=reject; rua=mailto:d@acme.example</code>" in page
    assert "may be rejected" not in page


def test_dmarc_reject_without_our_spf_include_shows_a_warning(signed_in, inbox, dns, settings):
    settings.SENDING_SPF_INCLUDE = "_spf.mail.localhost"
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    dns.add_txt("acme.example", "v=spf1 include:_spf.google.com -all")
    dns.add_txt("_dmarc.acme.example", "v=DMARC1; p=reject")
    signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@acme.example")
    )

    page = signed_in.get(page_url(inbox)).text

    assert (
        "acme.example has a DMARC policy of “reject” and its SPF record does not include "
        "_spf.mail.localhost: mail InboxHub sends from this address may be rejected."
    ) in page
    assert "Add “include:_spf.mail.localhost” to the SPF record of acme.example." in page


def test_dmarc_quarantine_of_the_organizational_domain_warns_for_a_subdomain(signed_in, inbox, dns):
    dns.add("eu.acme.example", "MX", "10 mx.acme.example.")
    dns.add_txt("_dmarc.acme.example", "v=DMARC1; p=quarantine")
    signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@eu.acme.example")
    )

    page = signed_in.get(page_url(inbox)).text

    assert "No SPF record" in page
    assert "(of acme.example)" in page
    assert "may be sent to spam" in page


def test_dmarc_none_gives_no_warning(signed_in, inbox, dns):
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    dns.add_txt("_dmarc.acme.example", "v=DMARC1; p=none")
    signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@acme.example")
    )

    assert "may be" not in signed_in.get(page_url(inbox)).text


def test_the_domain_check_endpoint_reports_as_the_address_is_typed(signed_in, inbox, dns):
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    dns.add_txt("acme.example", "v=spf1 -all")

    r = signed_in.get(page_url(inbox) + "check-domain/", {"custom_from_address": "help@acme.example"})

    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div id="deliverability"')
    assert "<code>v=spf1 -all</code>" in r.text
    missing = signed_in.get(page_url(inbox) + "check-domain/", {"custom_from_address": "help@gone.example"})
    assert "gone.example has no MX or A record" in missing.text


def test_changing_a_verified_custom_address_resets_its_verification(signed_in, inbox, dns):
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    dns.add("other.example", "MX", "10 mx.other.example.")
    with scopes_disabled():
        FallbackAddress.objects.filter(pk=fallback_of(inbox).pk).update(
            from_address_mode="custom",
            custom_from_address="help@acme.example",
            custom_from_verified_at=timezone.now(),
        )

    signed_in.post(
        page_url(inbox), payload(from_address_mode="custom", custom_from_address="help@other.example")
    )

    fallback = fallback_of(inbox)
    assert fallback.custom_from_address == "help@other.example"
    assert fallback.custom_from_verified_at is None


def test_saving_other_settings_keeps_a_verified_address_verified(signed_in, inbox, dns):
    dns.add("acme.example", "MX", "10 mx.acme.example.")
    with scopes_disabled():
        FallbackAddress.objects.filter(pk=fallback_of(inbox).pk).update(
            from_address_mode="custom",
            custom_from_address="help@acme.example",
            custom_from_verified_at=timezone.now(),
        )

    signed_in.post(
        page_url(inbox),
        payload(from_address_mode="custom", custom_from_address="help@acme.example", company_name="Alpha Co"),
    )

    assert fallback_of(inbox).custom_from_verified


# --- who the mail is from (C2, C4) ------------------------------------------------------------------


def test_the_default_from_address_depends_on_the_senders_seat(admin, inbox):
    free = MembershipFactory(
        account=admin.account, user__full_name="Fran Free", username="fran", seat=Membership.Seat.FREE
    )
    fallback = fallback_of(inbox)
    with scope(account=admin.account):
        assert effective_from(fallback, admin) == ("Alice Admin at Alpha", "alice@alpha.mail.localhost")
        assert effective_from(fallback, free) == ("Fran Free at Alpha", "fran@alpha.free-mail.localhost")


def test_company_name_mode_sends_as_the_company_only(admin, inbox):
    fallback = fallback_of(inbox)
    fallback.from_name_mode = FallbackAddress.FromName.COMPANY

    with scope(account=admin.account):
        assert effective_from(fallback, admin)[0] == "Alpha"


def test_a_verified_custom_address_is_the_from_address(admin, inbox):
    fallback = fallback_of(inbox)
    fallback.from_address_mode = FallbackAddress.FromAddress.CUSTOM
    fallback.custom_from_address = "help@acme.example"
    fallback.custom_from_verified_at = timezone.now()

    with scope(account=admin.account):
        assert effective_from(fallback, admin)[1] == "help@acme.example"


# --- preview (C7) -----------------------------------------------------------------------------------


def test_the_preview_shows_the_posted_values_with_the_agents_name_and_saves_nothing(signed_in, inbox):
    r = signed_in.post(
        page_url(inbox) + "preview/",
        payload(
            from_name_mode="agent_and_company",
            company_name="Alpha Care",
            signature_html="<p>{{first_name}} {{last_name}} · <i>{{full_name}}</i></p>",
        ),
        headers={"HX-Request": "true"},
    )

    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div id="preview"')
    assert "Alice Admin at Alpha Care" in r.text
    assert "&lt;alice@alpha.mail.localhost&gt;" in r.text
    assert "<p>Alice Admin · <i>Alice Admin</i></p>" in r.text
    assert fallback_of(inbox).company_name == "Alpha"


def test_the_preview_sanitizes_and_lists_what_will_be_removed(signed_in, inbox):
    r = signed_in.post(
        page_url(inbox) + "preview/",
        payload(signature_html='<img src="x" onerror="alert(1)"><script>alert(2)</script><b>Hi</b>'),
        headers={"HX-Request": "true"},
    )

    assert "<script" not in r.text and "onerror" not in r.text.split("Removed when you save")[0]
    assert "<b>Hi</b>" in r.text
    assert "Removed when you save, because it is not safe in email:" in r.text
    assert "&lt;script&gt; element" in r.text


def test_an_agent_name_with_html_is_escaped_in_the_preview(client, admin, inbox):
    admin.user.full_name = '<img src=x onerror="alert(1)">'
    admin.user.save(update_fields=["full_name"])
    client.force_login(admin.user)

    r = client.post(page_url(inbox) + "preview/", payload(signature_html="<p>{{full_name}}</p>"))

    assert "<img src=x" not in r.text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in r.text


def test_the_preview_is_post_only(signed_in, inbox):
    assert signed_in.get(page_url(inbox) + "preview/").status_code == 405


def test_the_preview_of_an_outsider_is_404(client, outsider, inbox):
    client.force_login(outsider.user)

    assert client.post(page_url(inbox) + "preview/", payload()).status_code == 404
