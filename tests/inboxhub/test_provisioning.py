from django_scopes import scope

from tests.factories import make_account


def test_a_new_account_has_a_default_inbox_with_its_fallback_address(db, settings):
    owner = make_account("gamma")
    with scope(account=owner.account):
        inbox = owner.account.inboxes.get()
        address = inbox.channels.get().fallback_address.address
    assert inbox.is_default
    assert address == f"support@gamma.{settings.INBOUND_DOMAIN}"


def test_a_new_account_has_the_support_pipeline_with_four_stages(db):
    owner = make_account()
    with scope(account=owner.account):
        pipeline = owner.account.pipelines.get()
        stages = list(pipeline.stages.values_list("name", flat=True))
    assert pipeline.name == "Support pipeline"
    assert stages == ["New", "Waiting on contact", "Waiting on us", "Closed"]
