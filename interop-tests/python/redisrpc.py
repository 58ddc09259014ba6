"""A RedisRPC client and server in Python, written from the protocol.

This module stands in for the Python RedisRPC peer in the interop tests, so
it keeps that peer's wire habits on purpose:

* the response queue is ``<queue>:rpc:`` plus 8 characters from ``[A-Z0-9]``;
* ``args`` is left out of a request when there are none, ``kwargs`` is sent
  only when given;
* a call that times out raises and leaves its request in the queue;
* the server deletes its queue when it starts, replies with a plain
  ``RPUSH``, writes an exception as the ``repr`` of the Python exception,
  and writes non-finite floats as the bare tokens ``Infinity``/``NaN``
  (what ``json.dumps`` does by default).

Give it a connection without a socket timeout
(``redis.Redis(socket_timeout=None)``): redis-py 8 gives up a read after
5 s by default, which would cut a longer ``BLPOP`` short.

Unlike the original, the server calls the method with ``getattr``; it never
builds source text from a request.
"""

import json
import random
import string

__all__ = ["Client", "Server", "RemoteException", "TimeoutException"]

_RANDOM_ALPHABET = string.ascii_uppercase + string.digits


class RemoteException(Exception):
    """The server answered with an exception; ``args[0]`` is its text."""


class TimeoutException(Exception):
    """No reply arrived within the client's timeout."""


class Client:
    """Calls methods of the service that listens on ``message_queue``.

    ``client.call("add", 5)`` or ``client.add(5)``; named arguments too:
    ``client.add(number=5)``. ``timeout`` is in seconds, 0 waits forever.
    """

    def __init__(self, redis_server, message_queue, timeout=0):
        self.redis_server = redis_server
        self.message_queue = message_queue
        self.timeout = timeout

    def call(self, method_name, *args, **kwargs):
        function_call = {"name": method_name}
        if args:
            function_call["args"] = list(args)
        if kwargs:
            function_call["kwargs"] = kwargs
        suffix = "".join(random.choice(_RANDOM_ALPHABET) for _ in range(8))
        response_queue = self.message_queue + ":rpc:" + suffix
        message = json.dumps({"function_call": function_call, "response_queue": response_queue})
        self.redis_server.rpush(self.message_queue, message)
        popped = self.redis_server.blpop([response_queue], self.timeout)
        if popped is None:
            # The Python peer leaves the request queued: a server may still run it.
            raise TimeoutException("no reply within %s s" % self.timeout)
        reply = json.loads(popped[1].decode("utf-8"))
        if reply.get("exception") is not None:
            raise RemoteException(reply["exception"])
        if "return_value" not in reply:
            raise RemoteException("malformed reply: %r" % (reply,))
        return reply["return_value"]

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)


class Server:
    """Serves the public methods of ``local_object`` on ``message_queue``."""

    def __init__(self, redis_server, message_queue, local_object):
        self.redis_server = redis_server
        self.message_queue = message_queue
        self.local_object = local_object

    def start(self):
        """Takes over the queue (deleting what is in it) and serves forever."""
        self.clear_queue()
        self.serve_forever()

    def clear_queue(self):
        """Deletes the queue and every request waiting in it."""
        self.redis_server.delete(self.message_queue)

    def serve_forever(self):
        while True:
            self.serve_one()

    def serve_one(self):
        """Waits for one request, runs it and pushes the reply."""
        _, message = self.redis_server.blpop([self.message_queue], 0)
        request = json.loads(message.decode("utf-8"))
        function_call = request["function_call"]
        try:
            name = function_call["name"]
            if name.startswith("_"):
                raise AttributeError("%r has no public method %r" % (type(self.local_object).__name__, name))
            method = getattr(self.local_object, name)
            args = function_call.get("args") or []
            kwargs = function_call.get("kwargs") or {}
            reply = {"return_value": method(*args, **kwargs)}
        except Exception as exception:
            reply = {"exception": repr(exception)}
        self.redis_server.rpush(request["response_queue"], json.dumps(reply))
