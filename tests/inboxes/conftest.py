import pytest
from django_scopes import scope

from tests.dnsserver import DNSServer
from tests.inboxes.helpers import default_inbox


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Attachments go to a fresh folder per test."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def quiet_dns(settings):
    """Sender authentication asks an empty DNS on loopback, never the system's (G8).

    Tests that need records add them to this server (`quiet_dns.add_txt(...)`).
    """
    settings.TRUSTED_NETWORKS = []
    settings.TRUSTED_RELAYS = []
    settings.TRUSTED_AUTHSERV_ID = ""
    with DNSServer() as server:
        settings.DNS_NAMESERVERS = [server.address]
        yield server


@pytest.fixture
def inbox(admin):
    return default_inbox(admin.account)


@pytest.fixture
def other_inbox(outsider):
    return default_inbox(outsider.account)


@pytest.fixture
def in_scope(admin):
    with scope(account=admin.account):
        yield
