"""Settings from the environment: a bad value stops start-up and names the variable."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from inboxhub.lib.env import env_cpu_priority


@pytest.mark.parametrize(
    ("raw", "expected"), [("", "idle"), ("idle", "idle"), (" IDLE ", "idle"), ("0", 0), ("19", 19)]
)
def test_worker_cpu_priority_is_idle_or_a_nice_value(monkeypatch, raw, expected):
    monkeypatch.setenv("WORKER_CPU_PRIORITY", raw)
    assert env_cpu_priority("WORKER_CPU_PRIORITY", "idle") == expected


@pytest.mark.parametrize("raw", ["high", "20", "-5", "10.5"])
def test_a_bad_worker_cpu_priority_stops_start_up_with_its_value(monkeypatch, raw):
    monkeypatch.setenv("WORKER_CPU_PRIORITY", raw)
    message = f"WORKER_CPU_PRIORITY must be idle or a nice value from 0 to 19, not {raw!r}"
    with pytest.raises(ImproperlyConfigured, match=message.replace(".", r"\.")):
        env_cpu_priority("WORKER_CPU_PRIORITY", "idle")
