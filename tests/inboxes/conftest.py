import pytest
from django_scopes import scope

from tests.inboxes.helpers import default_inbox


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Attachments go to a fresh folder per test."""
    settings.MEDIA_ROOT = tmp_path / "media"


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
