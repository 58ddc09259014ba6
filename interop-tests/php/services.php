<?php
// The example services, as plain PHP objects for `RedisRpc\Server`. They
// follow the contracts of the Rust examples (`calc` and `inventory`) so the
// same test cases run against a PHP server and a Rust one.

/** An accumulator; division by zero raises `DivisionByZeroError`. */
class Calculator
{
    private float $value = 0.0;

    public function clr()
    {
        $this->value = 0.0;
        return null;
    }

    public function add($number): float
    {
        return $this->value += $number;
    }

    public function sub($number): float
    {
        return $this->value -= $number;
    }

    public function mul($number): float
    {
        return $this->value *= $number;
    }

    public function div($number): float
    {
        // fdiv would give INF; the calculator refuses it.
        if ($number == 0) {
            throw new DivisionByZeroError('Division by zero');
        }
        return $this->value /= $number;
    }

    public function val(): float
    {
        return $this->value;
    }
}

/** Parts by name, each an object with the members of the wire contract. */
class Inventory
{
    private array $parts = [];

    public function add($name, $kind, $count, $weight_kg, $tags, $supplier = null): object
    {
        if ($count < 0) {
            throw new InvalidArgumentException('count must not be negative');
        }
        $part = (object) [
            'name' => $name, 'kind' => $kind, 'count' => intval($count), 'weight_kg' => floatval($weight_kg),
            'tags' => array_values((array) $tags), 'supplier' => $supplier, 'attributes' => new stdClass(),
        ];
        $this->parts[$name] = $part;
        return $part;
    }

    public function put($part): object
    {
        $this->parts[$part->name] = $part;
        return $part;
    }

    public function get($name): ?object
    {
        return $this->parts[$name] ?? null;
    }

    public function list($kind = null): array
    {
        $names = array_keys($this->parts);
        sort($names, SORT_STRING);
        $parts = [];
        foreach ($names as $name) {
            $part = $this->parts[$name];
            if ($kind === null || \RedisRpc\encode($part->kind) === \RedisRpc\encode($kind)) {
                $parts[] = $part;
            }
        }
        return $parts;
    }

    public function counts(): object
    {
        $counts = new stdClass();
        foreach ($this->parts as $name => $part) {
            $counts->{$name} = $part->count;
        }
        return $counts;
    }

    public function remove($name): object
    {
        if (!array_key_exists($name, $this->parts)) {
            throw new InvalidArgumentException("no part named `{$name}`");
        }
        $part = $this->parts[$name];
        unset($this->parts[$name]);
        return $part;
    }

    public function echo($value)
    {
        return $value;
    }
}

const SERVICES = ['calc' => Calculator::class, 'inventory' => Inventory::class];
