<?php declare(strict_types=1);

namespace Lamina\Runtime;

/**
 * A blocking client for the Runtime API: HTTP/1.1 over one kept-alive TCP connection.
 *
 * Stream sockets rather than curl, which Debian's php-cli does not ship. One connection for
 * every request of the process: a new one per request costs a connect and a server-side
 * accept on each invocation's hot path.
 */
final class RuntimeApi
{
    private const PREFIX = '/2018-06-01/runtime';
    private const BIG = 65536; // bodies above this are written apart from the head, uncopied

    /** @var string */
    private $address;
    /** @var string */
    private $target;
    /** @var string */
    private $userAgent;
    /** @var resource|null */
    private $socket = null;
    /** @var string */
    private $buffer = '';

    public function __construct(string $address)
    {
        $colon = strrpos($address, ':');
        if ($colon === false || !ctype_digit_safe(substr($address, $colon + 1))) {
            throw new \RuntimeException("AWS_LAMBDA_RUNTIME_API = '$address': must be host:port");
        }
        $this->address = $address;
        $this->target = 'tcp://' . $address;
        $this->userAgent = 'lamina-php/' . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION;
    }

    /**
     * The next invocation: its headers (names lower-cased) and its payload.
     *
     * @return array{0: array<string, string>, 1: string}
     */
    public function next(): array
    {
        [$status, $headers, $body] = $this->request('GET', self::PREFIX . '/invocation/next');
        if ($status !== 200) {
            throw self::failure($status, $body);
        }
        return [$headers, $body];
    }

    public function respond(string $requestId, string $json): void
    {
        $this->post("/invocation/$requestId/response", $json, []);
    }

    public function fail(string $requestId, string $json): void
    {
        // Like Bref and AWS's own clients: no error-type header on invocation errors.
        $this->post("/invocation/$requestId/error", $json, []);
    }

    public function failInit(string $json, string $errorType): void
    {
        $this->post('/init/error', $json, ["Lambda-Runtime-Function-Error-Type: $errorType"]);
    }

    public function close(): void
    {
        if ($this->socket !== null) {
            fclose($this->socket);
        }
        $this->socket = null;
        $this->buffer = '';
    }

    /** @param list<string> $headers */
    private function post(string $path, string $json, array $headers): void
    {
        $headers[] = 'Content-Type: application/json';
        [$status, , $body] = $this->request('POST', self::PREFIX . $path, $json, $headers);
        if ($status === 413) {
            throw new \Bref\Runtime\ResponseTooBig();
        }
        if ($status >= 400) {
            throw self::failure($status, $body);
        }
    }

    private static function failure(int $status, string $body): \Exception
    {
        // Bref's wording, so that operators see familiar lines.
        $error = json_decode($body, true);
        $message = is_array($error) && isset($error['errorType'], $error['errorMessage'])
            ? "{$error['errorType']}: {$error['errorMessage']}"
            : 'unknown error';
        return new \Exception("Error $status while calling the Lambda runtime API: $message");
    }

    /**
     * @param list<string> $headers
     * @return array{0: int, 1: array<string, string>, 2: string}
     */
    private function request(string $method, string $path, ?string $body = null, array $headers = []): array
    {
        $head = "$method $path HTTP/1.1\r\nHost: {$this->address}\r\nUser-Agent: {$this->userAgent}\r\n";
        if ($body !== null) {
            $head .= 'Content-Length: ' . strlen($body) . "\r\n";
        }
        foreach ($headers as $header) {
            $head .= "$header\r\n";
        }
        $head .= "\r\n";
        // A kept-alive connection the server closed while the handler ran is stale: none of
        // the request was processed, so it is sent again, once, on a new connection.
        for ($attempt = 0; ; $attempt++) {
            $reused = $this->socket !== null;
            if (!$reused) {
                $this->connect();
            }
            if ($body !== null && strlen($body) > self::BIG) {
                $this->write($head) && $this->write($body);
            } else {
                $this->write($body === null ? $head : $head . $body);
            }
            // Read even after a failed write: the server may have answered before it closed.
            $response = $this->readResponse($method);
            if ($response !== null) {
                return $response;
            }
            $this->close();
            if (!$reused || $attempt > 0) {
                throw new \RuntimeException("the Runtime API at {$this->address} closed the connection");
            }
        }
    }

    private function connect(): void
    {
        $context = stream_context_create(['socket' => ['tcp_nodelay' => true]]);
        $socket = @stream_socket_client($this->target, $errno, $error, 10.0, STREAM_CLIENT_CONNECT, $context);
        if ($socket === false) {
            throw new \RuntimeException("cannot connect to the Runtime API at {$this->address}: $error");
        }
        // `next` is a long poll: it may wait for hours, never time out.
        stream_set_timeout($socket, 31536000);
        stream_set_write_buffer($socket, 0);
        $this->socket = $socket;
        $this->buffer = '';
    }

    private function write(string $data): bool
    {
        $length = strlen($data);
        for ($written = 0; $written < $length; $written += $count) {
            $count = @fwrite($this->socket, $written === 0 ? $data : substr($data, $written));
            if ($count === false || $count === 0) {
                return false;
            }
        }
        return true;
    }

    /** Reads more into the buffer; false once the peer has closed. */
    private function fill(): bool
    {
        $chunk = @fread($this->socket, 65536);
        if ($chunk === false || $chunk === '') {
            return false;
        }
        $this->buffer .= $chunk;
        return true;
    }

    /**
     * The response, or null if the connection closed before any of it arrived.
     *
     * @return array{0: int, 1: array<string, string>, 2: string}|null
     */
    private function readResponse(string $method): ?array
    {
        while (($end = strpos($this->buffer, "\r\n\r\n")) === false) {
            if (!$this->fill()) {
                if ($this->buffer === '') {
                    return null;
                }
                throw new \RuntimeException('the Runtime API closed the connection mid-response');
            }
        }
        $lines = explode("\r\n", substr($this->buffer, 0, $end));
        $this->buffer = (string) substr($this->buffer, $end + 4);
        $status = (int) substr($lines[0], 9, 3);
        $headers = [];
        for ($i = 1, $n = count($lines); $i < $n; $i++) {
            $colon = strpos($lines[$i], ':');
            if ($colon !== false) {
                $headers[strtolower(substr($lines[$i], 0, $colon))] = trim(substr($lines[$i], $colon + 1));
            }
        }
        $length = $method === 'HEAD' ? 0 : (int) ($headers['content-length'] ?? 0);
        while (strlen($this->buffer) < $length) {
            if (!$this->fill()) {
                throw new \RuntimeException('the Runtime API closed the connection mid-body');
            }
        }
        $body = (string) substr($this->buffer, 0, $length);
        $this->buffer = (string) substr($this->buffer, $length);
        if (strcasecmp($headers['connection'] ?? '', 'close') === 0) {
            $this->close();
        }
        return [$status, $headers, $body];
    }
}

function ctype_digit_safe(string $text): bool
{
    // ctype is an extension a machine may lack.
    return $text !== '' && strspn($text, '0123456789') === strlen($text);
}
