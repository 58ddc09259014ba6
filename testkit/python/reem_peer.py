"""A REEM program for the REEM-layout tests: writes, reads, publishes and
subscribes with REEM 0.1.2 itself, on the Redis at 127.0.0.1:PORT.

REEM connects through `rejson.Client(host=...)` with its default port, so
the port is pinned by subclassing `rejson.Client` before REEM is imported.

    reem_peer.py PORT write KEY        store the fixture at KEY
    reem_peer.py PORT read KEY         print KEY's value as JSON
    reem_peer.py PORT publish KEY N    publish KEY.count = 1..N, then KEY.done
    reem_peer.py PORT follow KEY N     print the first N values a
                                       CallbackSubscriber and a SilentSubscriber see

Arrays are printed as {"dtype": ..., "shape": [...], "data": [...]}.
"""

import json
import sys
import threading
import time

import numpy as np
import rejson

PORT = int(sys.argv[1])


class PinnedClient(rejson.Client):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("port", PORT)
        super().__init__(*args, **kwargs)


rejson.Client = PinnedClient

import reem  # noqa: E402  (after the port is pinned)


def fixture():
    return {
        "arm": {"angle": 0.5, "name": "left", "joints": [1, 2, 3], "big": 2**62, "tiny": 0.1, "neg": -(2**63)},
        "camera": {"frame": np.arange(24, dtype=np.uint8).reshape(2, 3, 4), "fps": 30},
        "depth": np.linspace(0, 1, 5, dtype=np.float32),
        "pose": np.array([[1.5, 2.5]], dtype=np.float64),
    }


def plain(value):
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def interface():
    connection = reem.RedisInterface(host="127.0.0.1")
    connection.initialize()
    return connection


def main():
    command, key = sys.argv[2], sys.argv[3]
    if command == "write":
        store = reem.KeyValueStore(interface())
        store[key] = fixture()
        store["speed"] = 3.5
    elif command == "read":
        store = reem.KeyValueStore(interface())
        print(json.dumps(plain(store[key].read())))
    elif command == "publish":
        space = reem.PublishSpace(interface())
        space[key] = {"count": 0, "frame": np.zeros(3, dtype=np.uint8)}
        for i in range(1, int(sys.argv[4]) + 1):
            space[key]["count"] = i
            time.sleep(0.02)
        space[key]["frame"] = np.arange(3, dtype=np.uint8)
    elif command == "follow":
        wanted = int(sys.argv[4])
        seen = []
        done = threading.Event()

        def callback(data, updated_path):
            if isinstance(updated_path, bytes):
                updated_path = updated_path.decode()
            seen.append({"path": updated_path, "value": plain(data)})
            if len(seen) >= wanted:
                done.set()

        silent = reem.SilentSubscriber(channel=key, interface=interface())
        silent.listen()
        loud = reem.CallbackSubscriber(channel=key, interface=interface(), callback_function=callback, kwargs={})
        loud.listen()
        # Each listener subscribes from a thread of its own, and skips the
        # confirmation once it comes: only then is it listening.
        listeners = [silent.passive_subscriber.listener, loud.passive_subscriber.listener]
        deadline = time.time() + 10
        while not all(listener.first_item_seen for listener in listeners):
            if time.time() > deadline:
                sys.exit("REEM's subscribers did not subscribe within 10 s")
            time.sleep(0.01)
        print("listening", flush=True)
        if not done.wait(20):
            sys.exit("only %d of %d updates came" % (len(seen), wanted))
        time.sleep(0.3)
        print(json.dumps({"callback": seen, "silent": plain(silent.value())}), flush=True)
    else:
        sys.exit("unknown command " + command)


main()
