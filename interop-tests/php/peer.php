<?php
// Command line of the PHP RedisRPC peer.
//
// Serve an example service until killed (prints `ready` once it serves):
//
//     php peer.php serve calc --url redis://127.0.0.1:6379 [--queue calc]
//
// Call one method; arguments are JSON (a word that is not JSON is a string);
// prints the result as JSON:
//
//     php peer.php call --queue calc add 5
//
// Without a method, reads a JSON array of calls
// `[{"method": "add", "args": [5]}, ...]` from stdin and prints one JSON line
// per call: `{"return_value": ...}` or `{"error": "remote" | "timeout", "message": "..."}`.

require_once __DIR__ . '/redisrpc.php';
require_once __DIR__ . '/services.php';

const USAGE = "usage: peer.php [--url URL] serve (calc|inventory) [--queue Q] | "
    . "peer.php [--url URL] call [--queue Q] [--timeout SECONDS] [METHOD [ARG...]]\n";

function usage(): never
{
    fwrite(STDERR, USAGE);
    exit(2);
}

// Flags take the next word as their value; every other word is positional,
// so negative numbers are arguments, not flags.
function parse_command_line(array $words): array
{
    $options = ['url' => 'redis://127.0.0.1:6379', 'timeout' => '10', 'queue' => null];
    $positional = [];
    while ($words !== []) {
        $word = array_shift($words);
        if (in_array($word, ['--url', '--queue', '--timeout'], true)) {
            if ($words === []) {
                usage();
            }
            $options[substr($word, 2)] = array_shift($words);
        } else {
            $positional[] = $word;
        }
    }
    return [$options, $positional];
}

function outcome(RedisRpc\Client $client, string $method, array $args): array
{
    try {
        return ['return_value' => $client->call($method, $args)];
    } catch (RedisRpc\RemoteException $e) {
        return ['error' => 'remote', 'message' => $e->getMessage()];
    } catch (RedisRpc\TimeoutException $e) {
        return ['error' => 'timeout', 'message' => $e->getMessage()];
    }
}

function parse_word(string $word)
{
    try {
        return RedisRpc\decode($word);
    } catch (JsonException $e) {
        return $word;
    }
}

[$options, $positional] = parse_command_line(array_slice($argv, 1));
$redis = RedisRpc\connect($options['url']);
switch (array_shift($positional)) {
    case 'serve':
        $name = $positional[0] ?? usage();
        $class = SERVICES[$name] ?? usage();
        $server = new RedisRpc\Server($redis, $options['queue'] ?? $name, new $class());
        $server->flushQueue();
        fwrite(STDOUT, "ready\n");
        fflush(STDOUT);
        $server->run();
        break;
    case 'call':
        $client = new RedisRpc\Client($redis, $options['queue'] ?? 'calc', floatval($options['timeout']));
        if ($positional === []) {
            foreach (RedisRpc\decode(stream_get_contents(STDIN)) as $each) {
                fwrite(STDOUT, RedisRpc\encode(outcome($client, $each->method, $each->args ?? [])) . "\n");
                fflush(STDOUT);
            }
            break;
        }
        $result = outcome($client, $positional[0], array_map('parse_word', array_slice($positional, 1)));
        if (isset($result['error'])) {
            fwrite(STDERR, "{$result['error']} error: {$result['message']}\n");
            exit(1);
        }
        fwrite(STDOUT, RedisRpc\encode($result['return_value']) . "\n");
        break;
    default:
        usage();
}
