# frozen_string_literal: true

# The example services, as plain Ruby objects for `RedisRpc::Server`. They
# follow the contracts of the Rust examples (`calc` and `inventory`) so the
# same test cases run against a Ruby server and a Rust one.

# An accumulator; division by zero raises `ZeroDivisionError`.
class Calculator
  def initialize
    @value = 0.0
  end

  def clr
    @value = 0.0
  end

  def add(number)
    @value += number
  end

  def sub(number)
    @value -= number
  end

  def mul(number)
    @value *= number
  end

  def div(number)
    # Float division by zero is Infinity in Ruby; the calculator refuses it.
    raise ZeroDivisionError, 'divided by 0' if number.zero?

    @value /= number
  end

  def val
    @value
  end
end

# Parts by name, each a plain hash with the members of the wire contract.
class Inventory
  def initialize
    @parts = {}
  end

  def add(name, kind, count, weight_kg, tags, supplier = nil)
    raise ArgumentError, 'count must not be negative' if count.negative?

    @parts[name] = {
      'name' => name, 'kind' => kind, 'count' => Integer(count), 'weight_kg' => Float(weight_kg),
      'tags' => tags.to_a, 'supplier' => supplier, 'attributes' => {}
    }
  end

  def put(part)
    @parts[part['name']] = part
  end

  def get(name)
    @parts[name]
  end

  def list(kind = nil)
    @parts.keys.sort.map { |name| @parts[name] }.select { |part| kind.nil? || part['kind'] == kind }
  end

  def counts
    @parts.transform_values { |part| part['count'] }
  end

  def remove(name)
    raise ArgumentError, "no part named `#{name}`" unless @parts.key?(name)

    @parts.delete(name)
  end

  def echo(value)
    value
  end
end

SERVICES = { 'calc' => Calculator, 'inventory' => Inventory }.freeze
