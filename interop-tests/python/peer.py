#!/usr/bin/env python3
"""Command line of the Python RedisRPC peer.

Serve an example service until killed (prints ``ready`` once it serves):

    python3 peer.py serve calc --url redis://127.0.0.1:6379 [--queue calc]

Call one method; arguments are JSON (a word that is not JSON is a string),
``name=JSON`` passes a named argument; prints the result as JSON:

    python3 peer.py call --queue calc add 5
    python3 peer.py call --queue calc add number=2.5

Without a method, reads a JSON array of calls
``[{"method": "add", "args": [5], "kwargs": {}}, ...]`` from stdin and prints
one JSON line per call: ``{"return_value": ...}`` or
``{"error": "remote" | "timeout", "message": "..."}``.
"""

import argparse
import json
import re
import sys

import redis

import redisrpc
import services


def connect(url):
    # redis-py 8 gives up reading after 5 s by default, which would
    # cut a longer BLPOP short; the peer waits as long as the protocol says.
    return redis.Redis.from_url(url, socket_timeout=None)


def serve(options):
    service = services.SERVICES[options.service]()
    server = redisrpc.Server(connect(options.url), options.queue or options.service, service)
    server.clear_queue()
    print("ready", flush=True)
    server.serve_forever()


def outcome(client, method, args, kwargs):
    try:
        return {"return_value": client.call(method, *args, **kwargs)}
    except redisrpc.RemoteException as error:
        return {"error": "remote", "message": error.args[0]}
    except redisrpc.TimeoutException as error:
        return {"error": "timeout", "message": str(error)}


def parse_word(word):
    try:
        return json.loads(word)
    except ValueError:
        return word


def call(options):
    client = redisrpc.Client(connect(options.url), options.queue, options.timeout)
    if options.method is None:
        calls = json.loads(sys.stdin.buffer.read().decode("utf-8"))
        for each in calls:
            result = outcome(client, each["method"], each.get("args", []), each.get("kwargs", {}))
            print(json.dumps(result), flush=True)
        return 0
    args, kwargs = [], {}
    for word in options.args:
        named = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", word, re.S)
        if named:
            kwargs[named.group(1)] = parse_word(named.group(2))
        else:
            args.append(parse_word(word))
    result = outcome(client, options.method, args, kwargs)
    if "error" in result:
        print("%s error: %s" % (result["error"], result["message"]), file=sys.stderr)
        return 1
    print(json.dumps(result["return_value"]))
    return 0


def main():
    parser = argparse.ArgumentParser(description="The Python RedisRPC peer.")
    parser.add_argument("--url", default="redis://127.0.0.1:6379", help="the Redis URL")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="serve an example service until killed")
    serving.add_argument("service", choices=sorted(services.SERVICES))
    serving.add_argument("--url", default=argparse.SUPPRESS)
    serving.add_argument("--queue", help="the queue to serve (default: the service's name)")
    calling = commands.add_parser("call", help="call methods of a service")
    calling.add_argument("--url", default=argparse.SUPPRESS)
    calling.add_argument("--queue", default="calc")
    calling.add_argument("--timeout", type=float, default=10.0, help="seconds; 0 waits forever")
    calling.add_argument("method", nargs="?")
    calling.add_argument("args", nargs="*")
    options = parser.parse_args()
    if options.command == "serve":
        serve(options)
    else:
        sys.exit(call(options))


if __name__ == "__main__":
    main()
