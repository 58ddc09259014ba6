"""The example services, as plain Python objects for ``redisrpc.Server``.

They follow the contracts of the Rust examples (``calc`` and ``inventory``)
so the same test cases run against a Python server and a Rust one.
"""


class Calculator:
    """An accumulator; division by zero raises ``ZeroDivisionError``."""

    def __init__(self):
        self.value = 0.0

    def clr(self):
        self.value = 0.0

    def add(self, number):
        self.value += number
        return self.value

    def sub(self, number):
        self.value -= number
        return self.value

    def mul(self, number):
        self.value *= number
        return self.value

    def div(self, number):
        self.value /= number
        return self.value

    def val(self):
        return self.value


class Inventory:
    """Parts by name, each a plain dict with the members of the wire contract."""

    def __init__(self):
        self.parts = {}

    def add(self, name, kind, count, weight_kg, tags, supplier=None):
        if count < 0:
            raise ValueError("count must not be negative")
        part = {
            "name": name,
            "kind": kind,
            "count": int(count),
            "weight_kg": float(weight_kg),
            "tags": list(tags),
            "supplier": supplier,
            "attributes": {},
        }
        self.parts[name] = part
        return part

    def put(self, part):
        self.parts[part["name"]] = part
        return part

    def get(self, name):
        return self.parts.get(name)

    def list(self, kind=None):
        return [self.parts[name] for name in sorted(self.parts) if kind is None or self.parts[name]["kind"] == kind]

    def counts(self):
        return {name: part["count"] for name, part in self.parts.items()}

    def remove(self, name):
        if name not in self.parts:
            raise ValueError("no part named `%s`" % name)
        return self.parts.pop(name)

    def echo(self, value):
        return value


SERVICES = {"calc": Calculator, "inventory": Inventory}
