import pytest

from tests.dnsserver import DNSServer


@pytest.fixture(autouse=True)
def quiet_dns(settings, tmp_path):
    """Ingested mail asks an empty DNS on loopback, never the system's (G8); attachments go to tmp."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.TRUSTED_NETWORKS = []
    settings.TRUSTED_RELAYS = []
    settings.TRUSTED_AUTHSERV_ID = ""
    with DNSServer() as server:
        settings.DNS_NAMESERVERS = [server.address]
        yield server
