"""A local Knative broker: `kshop dev` runs it so that events flow as on a cluster.

It follows shared/reference/knative-eventing.md, sections (a) to (h): the ingress and
its status codes, Trigger filters, delivery with retries and dead-letter sinks,
replies, headers and PingSources, all read from the topology in the chart's values.

One choice differs from Knative's default on purpose: fan-out is asynchronous, and
in-flight events live in this process's memory (see `broker.py`).

    broker = Broker(topology.load(), {"orders": "http://127.0.0.1:8101", ...})
    await broker.start()  # or serve `broker.app` with lifespan on
    ...                   # POST CloudEvents to /default/default
    await broker.stop()
"""

from functions.dev.broker.broker import Broker
from functions.dev.broker.records import Outcome, Record

__all__ = ["Broker", "Outcome", "Record"]
