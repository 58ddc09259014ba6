# frozen_string_literal: true

# Command line of the Ruby RedisRPC peer.
#
# Serve an example service until killed (prints `ready` once it serves):
#
#     ruby peer.rb serve calc --url redis://127.0.0.1:6379 [--queue calc]
#
# Call one method; arguments are JSON (a word that is not JSON is a string);
# prints the result as JSON:
#
#     ruby peer.rb call --queue calc add 5
#
# Without a method, reads a JSON array of calls
# `[{"method": "add", "args": [5]}, ...]` from stdin and prints one JSON line
# per call: `{"return_value": ...}` or
# `{"error": "remote" | "timeout", "message": "...", "backtrace": [...]}`.

Encoding.default_external = Encoding::UTF_8
$LOAD_PATH.unshift(__dir__)
require 'redisrpc'
require 'services'

USAGE = 'usage: peer.rb [--url URL] serve (calc|inventory) [--queue Q] | ' \
        'peer.rb [--url URL] call [--queue Q] [--timeout SECONDS] [METHOD [ARG...]]'

# Flags take the next word as their value; every other word is positional,
# so negative numbers are arguments, not flags.
def parse_command_line(words)
  options = { 'url' => 'redis://127.0.0.1:6379', 'timeout' => '10' }
  positional = []
  until words.empty?
    word = words.shift
    if %w[--url --queue --timeout].include?(word)
      abort(USAGE) if words.empty?
      options[word.delete_prefix('--')] = words.shift
    else
      positional << word
    end
  end
  [options, positional]
end

def outcome(client, method, args)
  { return_value: client.call(method, *args) }
rescue RedisRpc::RemoteException => e
  { error: 'remote', message: e.message, backtrace: e.remote_backtrace }
rescue RedisRpc::TimeoutException => e
  { error: 'timeout', message: e.message }
end

def parse_word(word)
  RedisRpc.parse(word)
rescue JSON::ParserError
  word
end

def serve(redis, options, service_name)
  service = SERVICES.fetch(service_name) { abort(USAGE) }.new
  server = RedisRpc::Server.new(redis, options['queue'] || service_name, service)
  server.flush_queue!
  $stdout.puts('ready')
  $stdout.flush
  server.run
end

def call(redis, options, words)
  client = RedisRpc::Client.new(redis, options['queue'] || 'calc', timeout: Float(options['timeout']))
  if words.empty?
    RedisRpc.parse($stdin.read).each do |each|
      $stdout.puts(RedisRpc.generate(outcome(client, each['method'], each['args'] || [])))
      $stdout.flush
    end
    return
  end
  result = outcome(client, words.first, words.drop(1).map { |word| parse_word(word) })
  abort("#{result[:error]} error: #{result[:message]}") if result[:error]
  $stdout.puts(RedisRpc.generate(result[:return_value]))
end

options, positional = parse_command_line(ARGV.dup)
redis = Redis.new(url: options['url'])
case positional.shift
when 'serve' then serve(redis, options, positional.first)
when 'call' then call(redis, options, positional)
else abort(USAGE)
end
