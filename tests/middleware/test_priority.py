"""Priority: every thread gets a message, and the ones waiting in memory keep RabbitMQ's order."""

from __future__ import annotations

import dramatiq
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.message import Message
from dramatiq.worker import _WorkQueueItem

from messaging.messages import BROKER_PRIORITY
from middleware.priority import BrokerPriorityWorkQueue, Priority


def booted(threads: int, margin: int) -> Worker:
    broker = StubBroker(middleware=[Priority(margin=margin)])
    worker = Worker(broker, worker_threads=threads)
    broker.emit_before("worker_boot", worker)
    return worker


def test_prefetch_is_the_threads_plus_the_margin():
    assert booted(32, 0).queue_prefetch == 32
    assert booted(8, 2).queue_prefetch == 10
    assert booted(1, 0).queue_prefetch == 1


def test_delayed_messages_keep_dramatiqs_own_window():
    worker = booted(8, 0)
    assert worker.delay_prefetch == 8000, "held retries must not crowd out sooner ones"


def _item(actor_priority: int, amqp: int | None, name: str) -> _WorkQueueItem:
    options = {} if amqp is None else {BROKER_PRIORITY: amqp}
    return _WorkQueueItem(actor_priority, Message("q", name, (), {}, options))


def test_work_queue_serves_higher_amqp_priority_first_then_arrival():
    queue = BrokerPriorityWorkQueue()
    for item in (
        _item(0, 1, "low-1"),
        _item(0, 5, "mid"),
        _item(0, 1, "low-2"),
        _item(0, 10, "high"),
        _item(0, None, "none"),
    ):
        queue.put(item)
    order = [queue.get_nowait().message.actor_name for _ in range(5)]
    assert order == ["high", "mid", "low-1", "low-2", "none"]


def test_an_actors_own_priority_still_comes_first():
    queue = BrokerPriorityWorkQueue()
    queue.put(_item(10, 10, "urgent-but-background-actor"))
    queue.put(_item(0, 1, "foreground-actor"))
    assert queue.get_nowait().message.actor_name == "foreground-actor"


def test_a_booted_worker_uses_the_ordered_queue():
    worker = booted(4, 0)
    assert isinstance(worker.work_queue, BrokerPriorityWorkQueue)
    dramatiq.set_broker(StubBroker())  # leave no test broker behind as the global one
