<?php
// A RedisRPC client and server in PHP, written from the protocol.
//
// This file stands in for the PHP RedisRPC peer in the interop tests, so it
// keeps that peer's wire habits on purpose:
//
// * the response queue is `<queue>:rpc:` plus 8 characters of [A-Za-z0-9];
// * `args` is left out when there are none, `kwargs` is never sent;
// * a call that times out raises and leaves its request in the queue;
// * the server deletes its queue when it starts, replies with a plain
//   `RPUSH`, sends exceptions without extra members, and warns about a
//   malformed message and goes on.
//
// Unlike the original, which builds PHP source from the request and
// `eval`s it, the server calls only the public methods of its object.
// JSON objects stay objects (`stdClass`), so `{}` and `[]` round-trip.

namespace RedisRpc;

require_once 'Predis/autoload.php';

/** The server answered with an exception. */
class RemoteException extends \RuntimeException {}

/** No reply arrived within the client's timeout. */
class TimeoutException extends \RuntimeException {}

const JSON_FLAGS = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION;

function encode($value): string
{
    return json_encode($value, JSON_FLAGS | JSON_THROW_ON_ERROR);
}

function decode(string $text)
{
    return json_decode($text, false, 512, JSON_THROW_ON_ERROR);
}

/** A Redis connection whose reads may block forever (blocking pops). */
function connect(string $url): \Predis\Client
{
    return new \Predis\Client($url, ['read_write_timeout' => -1]);
}

/** Calls methods of the service on `$messageQueue`; `$timeout` in seconds. */
class Client
{
    private const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

    public function __construct(private \Predis\Client $redis, private string $messageQueue, private float $timeout)
    {
    }

    public function call(string $method, array $args = [])
    {
        $suffix = '';
        for ($i = 0; $i < 8; $i++) {
            $suffix .= self::ALPHABET[random_int(0, strlen(self::ALPHABET) - 1)];
        }
        $responseQueue = "{$this->messageQueue}:rpc:{$suffix}";
        $functionCall = ['name' => $method];
        if ($args !== []) {
            $functionCall['args'] = $args;
        }
        $request = encode(['function_call' => $functionCall, 'response_queue' => $responseQueue]);
        $this->redis->rpush($this->messageQueue, [$request]);
        $popped = $this->redis->blpop([$responseQueue], $this->timeout);
        if ($popped === null) {
            throw new TimeoutException("no reply within {$this->timeout} s");
        }
        $reply = decode($popped[1]);
        if (isset($reply->exception)) {
            throw new RemoteException(is_string($reply->exception) ? $reply->exception : encode($reply->exception));
        }
        if (!property_exists($reply, 'return_value')) {
            throw new RemoteException("malformed reply: {$popped[1]}");
        }
        return $reply->return_value;
    }
}

/** Serves the public methods of `$service` on `$messageQueue`. */
class Server
{
    public function __construct(private \Predis\Client $redis, private string $messageQueue, private object $service)
    {
    }

    /** Deletes the queue and every request waiting in it, as the PHP peer does. */
    public function flushQueue(): void
    {
        $this->redis->del([$this->messageQueue]);
    }

    public function run(): void
    {
        while (true) {
            $this->serveOne();
        }
    }

    public function serveOne(): void
    {
        [, $message] = $this->redis->blpop([$this->messageQueue], 0);
        try {
            $request = decode($message);
            $name = $request->function_call->name;
            $args = $request->function_call->args ?? [];
            $responseQueue = $request->response_queue;
            if (!is_string($name) || !is_array($args) || !is_string($responseQueue)) {
                throw new \UnexpectedValueException('not a request');
            }
        } catch (\Throwable $e) {
            fwrite(STDERR, "warning: dropped a malformed message: {$e->getMessage()}\n");
            return;
        }
        try {
            if (!$this->isServed($name)) {
                throw new \BadMethodCallException("unknown method {$name}");
            }
            $reply = ['return_value' => $this->service->$name(...$args)];
        } catch (\Throwable $e) {
            $reply = ['exception' => $e->getMessage()];
        }
        $this->redis->rpush($responseQueue, [encode($reply)]);
    }

    private function isServed(string $name): bool
    {
        if (!method_exists($this->service, $name)) {
            return false;
        }
        $method = new \ReflectionMethod($this->service, $name);
        return $method->isPublic() && !$method->isStatic() && !$method->isConstructor();
    }
}
