# frozen_string_literal: true

# A RedisRPC client and server in Ruby, written from the protocol.
#
# This file stands in for the Ruby RedisRPC peer in the interop tests, so it
# keeps that peer's wire habits on purpose:
#
# * the response queue is `<queue>:rpc:` plus 8 base-36 characters, upper case;
# * `args` is always sent (`[]` when there are none), `kwargs` never;
# * a call that times out removes its own request from the queue (`LREM`)
#   before it raises;
# * the server deletes its queue only in `run!`, replies with
#   `MULTI; RPUSH; EXPIRE <queue> 1; EXEC`, adds a `backtrace` to every
#   exception, and writes non-finite floats as the bare token `Infinity`.
#
# Methods are called with `public_send`: any public method of the object.

require 'json'
require 'redis'

module RedisRpc
  # The server answered with an exception.
  class RemoteException < StandardError
    # The server's backtrace, when it sent one.
    attr_reader :remote_backtrace

    def initialize(message, remote_backtrace = nil)
      super(message)
      @remote_backtrace = remote_backtrace
    end
  end

  # No reply arrived within the client's timeout.
  class TimeoutException < StandardError; end

  # Redis hands out strings in the default external encoding; JSON is UTF-8.
  def self.parse(text)
    JSON.parse(text.dup.force_encoding(Encoding::UTF_8), allow_nan: true)
  end

  def self.generate(value)
    JSON.generate(value, allow_nan: true)
  end

  # Calls methods of the service on `message_queue`: `client.call(:add, 5)`
  # or `client.add(5)`. `timeout` is in seconds, 0 waits forever.
  class Client
    def initialize(redis_server, message_queue, timeout: 0)
      @redis_server = redis_server
      @message_queue = message_queue
      @timeout = timeout
    end

    def call(method_name, *args)
      suffix = rand(36**8).to_s(36).upcase.rjust(8, '0')
      response_queue = "#{@message_queue}:rpc:#{suffix}"
      request = RedisRpc.generate(
        { function_call: { name: method_name.to_s, args: args }, response_queue: response_queue }
      )
      @redis_server.rpush(@message_queue, request)
      popped = @redis_server.blpop(response_queue, timeout: @timeout)
      if popped.nil?
        @redis_server.lrem(@message_queue, 1, request)
        raise TimeoutException, "no reply within #{@timeout} s"
      end
      reply = RedisRpc.parse(popped[1])
      raise RemoteException.new(reply['exception'], reply['backtrace']) unless reply['exception'].nil?
      raise RemoteException, "malformed reply: #{popped[1]}" unless reply.key?('return_value')

      reply['return_value']
    end

    def method_missing(name, *args)
      call(name, *args)
    end

    def respond_to_missing?(_name, _include_private = false)
      true
    end
  end

  # Serves the public methods of `local_object` on `message_queue`.
  class Server
    def initialize(redis_server, message_queue, local_object)
      @redis_server = redis_server
      @message_queue = message_queue
      @local_object = local_object
    end

    # Deletes the queue and every request waiting in it, then serves forever.
    def run!
      flush_queue!
      run
    end

    def flush_queue!
      @redis_server.del(@message_queue)
    end

    # Serves forever, leaving requests already queued in place.
    def run
      loop { serve_one }
    end

    # Waits for one request, runs it and pushes the reply, which expires
    # after a second if nobody collects it.
    def serve_one
      _, message = @redis_server.blpop(@message_queue, timeout: 0)
      request = RedisRpc.parse(message)
      function_call = request['function_call']
      begin
        value = @local_object.public_send(function_call['name'], *(function_call['args'] || []))
        reply = { return_value: value }
      rescue StandardError => e
        reply = { exception: e.message, backtrace: e.backtrace }
      end
      response_queue = request['response_queue']
      @redis_server.multi do |transaction|
        transaction.rpush(response_queue, RedisRpc.generate(reply))
        transaction.expire(response_queue, 1)
      end
    end
  end
end
