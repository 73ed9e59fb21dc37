"""``@rpc`` that survives the broker going away while a call is being answered.

nameko 2's own ``@rpc`` publishes the reply from the worker's result handler; if the broker
is restarting at that moment the publish raises, the exception escapes the worker thread and
nameko kills the whole service. Here a reply that cannot be sent is logged and the request is
settled as far as the broker still allows:

* the work is done and saved (every RPC that changes state is idempotent: a report carries its
  external id, a command its operation and department), so the caller — which has a timeout —
  asks again and gets the same answer;
* if the request's channel died with the broker, nothing can be acked: the broker hands the
  request out again after the restart and the idempotent handler answers it once more.
"""
from __future__ import annotations

import logging

from kombu import Queue
from nameko.rpc import RPC_QUEUE_TEMPLATE, ReplyListener, Rpc, RpcConsumer, RpcProxy, get_rpc_exchange

from shared.contracts import remote

from .topology import rpc_queue_arguments, rpc_reply_queue_arguments

log = logging.getLogger(__name__)


class SafeRpcConsumer(RpcConsumer):
    def setup(self):
        """nameko's own setup, with the queue's arguments from the topology: on a cluster
        (QUEUE_TYPE=quorum) ``rpc-<service>`` is a quorum queue, so a service's RPC survives
        the loss of the node that held its queue (a classic durable queue would be unusable
        until that node came back)."""
        if self.queue is None:
            config = self.container.config
            service_name = self.container.service_name
            self.queue = Queue(RPC_QUEUE_TEMPLATE.format(service_name), exchange=get_rpc_exchange(config),
                               routing_key=f"{service_name}.*", durable=True,
                               queue_arguments=rpc_queue_arguments(config))
            self.queue_consumer.register_provider(self)
            self._registered = True

    def handle_result(self, message, result, exc_info):
        try:
            return super().handle_result(message, result, exc_info)
        except Exception as exc:  # noqa: BLE001 - the broker is away: keep the service alive
            routing_key = (message.delivery_info or {}).get("routing_key")
            log.warning("could not send the reply to %s (%s); the caller will ask again",
                        routing_key, exc)
            try:
                self.queue_consumer.ack_message(message)
            except Exception as ack_exc:  # noqa: BLE001 - its channel died with the node
                log.warning("could not ack the request either (%s); it is delivered again", ack_exc)
            return result, exc_info


class SafeRpc(Rpc):
    rpc_consumer = SafeRpcConsumer()

    def __init__(self, expected_exceptions=remote.EXPECTED, **kwargs):
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)   # errors.*: not crashes


rpc = SafeRpc.decorator


class ReplicatedReplyListener(ReplyListener):
    """nameko's reply queue (``rpc.reply-<service>-<uuid>``) with the topology's arguments. nameko
    declares it durable on the node the caller is connected to; on a cluster, when that node
    died the queue was "down" and the caller could never consume its replies again (found with
    ``make cluster``: the gateway answered 503 until the node came back). As a quorum queue it
    moves to another node with its replies; it still expires when unused."""

    def setup(self):
        super().setup()
        self.queue.queue_arguments = rpc_reply_queue_arguments(self.container.config,
                                                               self.queue.queue_arguments)


class ReplicatedRpcProxy(RpcProxy):
    """``RpcProxy`` whose reply queue survives the loss of a node (see ReplicatedReplyListener)."""
    rpc_reply_listener = ReplicatedReplyListener()
