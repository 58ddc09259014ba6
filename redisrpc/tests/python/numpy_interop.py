"""The Python side of tests/state_python.rs: numpy arrays in the shared
state's Redis layout, through nothing but redis-py.

    python3 numpy_interop.py write URL   # writes document `py`; prints what it wrote as JSON
    python3 numpy_interop.py check URL   # reads document `rs`; checks it against JSON on stdin
"""

import json
import sys

import numpy
import redis



def binary_key(document, name):
    # The store's layout 1: a document's binary values live under
    # `__state__:{<document>}`, in the document's Redis Cluster slot.
    return "__state__:{" + document + "}." + name


def shape_text(shape):
    return str(tuple(shape))  # numpy prints shapes as Python tuples: (480, 640, 3)


def write(r):
    arrays = {
        "frame": numpy.arange(4 * 5 * 3, dtype=numpy.uint8).reshape(4, 5, 3),
        "ticks": numpy.array([-(2**31), -1, 0, 2**31 - 1], dtype=numpy.int32),
        "stamps": numpy.array([[-(2**63), 0], [1, 2**63 - 1]], dtype=numpy.int64),
        "cloud": (numpy.arange(6, dtype=numpy.float32) * numpy.float32(0.1)).reshape(2, 3),
        "history": numpy.array([0.1, -0.0, 1e-300, 5e-324], dtype=numpy.float64),
        "scalar": numpy.array(2.5),
    }
    document = {"name": "from Python ✓", "count": 2**64 - 1, "empty": {"a": [], "o": {}}}
    written = {}
    pipe = r.pipeline(transaction=True)
    for name, array in arrays.items():
        key = binary_key("py", name)
        # As REEM's numpy marshaller writes it.
        pipe.delete(key)
        pipe.hset(key, "arr", memoryview(numpy.ascontiguousarray(array).data).tobytes())
        pipe.hset(key, "dtype", str(array.dtype))
        pipe.hset(key, "shape", shape_text(array.shape))
        document[name] = {"$binary": {"label": "ndarray", "key": key}}
        written[name] = {
            "dtype": str(array.dtype),
            "shape": list(array.shape),
            "values": array.flatten().tolist(),
        }
    pipe.execute()
    # A version is the write's time in microseconds on the server's clock.
    seconds, micros = r.time()
    version = seconds * 1_000_000 + micros
    r.delete("py")
    r.hset("py", mapping={"json": json.dumps(document), "version": version})
    print(json.dumps(written))


def check(r, expected):
    document = json.loads(r.hget("rs", "json"))
    assert int(r.hget("rs", "version")) > 0
    assert document["text"] == "from Rust ✓", document["text"]
    assert document["big"] == 2**64 - 1
    for name, want in expected.items():
        marker = document["arrays"][name]["$binary"]
        assert marker["label"] == "ndarray", marker
        fields = r.hgetall(marker["key"])
        shape = tuple(int(n) for n in fields[b"shape"].decode()[1:-1].split(",") if n.strip())
        array = numpy.frombuffer(fields[b"arr"], fields[b"dtype"].decode()).reshape(shape)
        assert str(array.dtype) == want["dtype"], (name, array.dtype, want["dtype"])
        assert list(array.shape) == want["shape"], (name, array.shape, want["shape"])
        values = numpy.array(want["values"], dtype=array.dtype)
        # Bit for bit, so -0.0 and the float edges count.
        assert array.flatten().tobytes() == values.tobytes(), (name, array, values)
    print("checked", len(expected), "arrays")


def main():
    mode, url = sys.argv[1], sys.argv[2]
    r = redis.Redis.from_url(url)
    if mode == "write":
        write(r)
    elif mode == "check":
        check(r, json.load(sys.stdin))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
