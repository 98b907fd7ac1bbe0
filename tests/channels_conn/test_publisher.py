"""The ingress's publishing thread: ids committed close together go to the workers in one round."""

import threading
import time

import pytest

from channels_conn import smtp
from channels_conn.smtp import Publisher


class Rounds:
    """Records what each publishing round handed to the broker (stands in for the Celery publish)."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self.first_sent = threading.Event()

    def __call__(self, ids: list[int]) -> int:
        self.sent.append(list(ids))
        self.first_sent.set()
        return len(ids)


@pytest.fixture
def rounds(monkeypatch) -> Rounds:
    recorder = Rounds()
    monkeypatch.setattr(smtp, "enqueue_inbound_batch", recorder)
    return recorder


def test_a_lone_id_is_sent_at_once_and_the_next_ones_share_a_round(rounds):
    publisher = Publisher(interval=30)
    publisher.put(1)
    assert rounds.first_sent.wait(5)
    for inbound_id in (2, 3, 4):
        publisher.put(inbound_id)
    time.sleep(0.2)  # the thread now waits for its next round, 30 s away
    assert rounds.sent == [[1]]
    publisher.stop()  # stopping sends what is queued without waiting out the interval
    assert rounds.sent == [[1], [2, 3, 4]]
    assert not publisher.thread.is_alive()  # stop() gives it 10 s, a third of the interval


def test_an_id_after_the_stop_is_refused_for_the_sweep(rounds):
    publisher = Publisher()
    publisher.stop()
    assert publisher.put(5) is False
    assert rounds.sent == []
