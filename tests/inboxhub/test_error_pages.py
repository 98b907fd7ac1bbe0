"""403 and 404 answer with the app's own pages: one h1, the reason in words, one 404 for every stranger."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_free_agent_opening_inbox_settings_reads_why_not(client, agent):
    client.force_login(agent.user)
    response = client.get("/a/alpha/settings/inboxes/")
    assert response.status_code == 403
    assert response.text.count("<h1>") == 1 and "<main" in response.text
    assert "do this here</h1>" in response.text
    assert "Only super admins and account admins can open inbox settings." in response.text


def test_a_missing_page_and_another_accounts_page_answer_the_same_404(client, agent, outsider):
    client.force_login(agent.user)
    missing = client.get("/a/alpha/no-such-page/")
    theirs = client.get(f"/a/{outsider.account.subdomain}/inbox/")
    assert missing.status_code == theirs.status_code == 404
    assert "<h1>Page not found</h1>" in missing.text and "<h1>Page not found</h1>" in theirs.text
    assert missing.text.split("<main")[1] == theirs.text.split("<main")[1]  # nothing tells them apart
    assert missing.text.count("<h1>") == 1 and "<main" in missing.text
