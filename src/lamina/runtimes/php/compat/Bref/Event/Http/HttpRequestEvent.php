<?php declare(strict_types=1);

namespace Bref\Event\Http;

use Bref\Event\InvalidLambdaEvent;
use Bref\Event\LambdaEvent;

/**
 * An HTTP request from API Gateway (payload 1.0 or 2.0) or an ALB, with the accessors of
 * Bref's class of the same name (loaded only when the app does not ship Bref).
 */
final class HttpRequestEvent implements LambdaEvent
{
    /** @var array<string, mixed> */
    private $event;
    /** @var string */
    private $method;
    /** @var array<string, list<string>> lower-case names */
    private $headers;
    /** @var string */
    private $queryString;
    /** @var float */
    private $payloadVersion;

    /** @param mixed $event */
    public function __construct($event)
    {
        if (is_array($event) && isset($event['httpMethod'])) {
            $this->method = strtoupper((string) $event['httpMethod']);
        } elseif (is_array($event) && isset($event['requestContext']['http']['method'])) {
            $this->method = strtoupper((string) $event['requestContext']['http']['method']);
        } else {
            throw new InvalidLambdaEvent('API Gateway or ALB', $event);
        }
        $this->event = $event;
        $this->payloadVersion = (float) ($event['version'] ?? '1.0');
        $this->queryString = $this->rebuildQueryString();
        $this->headers = $this->collectHeaders();
    }

    public function toArray(): array
    {
        return $this->event;
    }

    public function getBody(): string
    {
        $body = (string) ($this->event['body'] ?? '');
        return ($this->event['isBase64Encoded'] ?? false) ? (string) base64_decode($body) : $body;
    }

    public function getMethod(): string
    {
        return $this->method;
    }

    /** @return array<string, list<string>> */
    public function getHeaders(): array
    {
        return $this->headers;
    }

    public function hasMultiHeader(): bool
    {
        return !$this->isFormatV2() && isset($this->event['multiValueHeaders']);
    }

    public function getProtocol(): string
    {
        return (string) ($this->event['requestContext']['protocol'] ?? 'HTTP/1.1');
    }

    public function getProtocolVersion(): string
    {
        $protocol = $this->getProtocol();
        return strncmp($protocol, 'HTTP/', 5) === 0 ? substr($protocol, 5) : $protocol;
    }

    public function getContentType(): ?string
    {
        return $this->headers['content-type'][0] ?? null;
    }

    public function getRemotePort(): int
    {
        return (int) ($this->headers['x-forwarded-port'][0] ?? 80);
    }

    public function getServerPort(): int
    {
        return (int) ($this->headers['x-forwarded-port'][0] ?? 80);
    }

    public function getServerName(): string
    {
        return $this->headers['host'][0] ?? 'localhost';
    }

    public function getSourceIp(): string
    {
        $context = $this->event['requestContext'] ?? [];
        return (string) ($context['http']['sourceIp'] ?? $context['identity']['sourceIp'] ?? '127.0.0.1');
    }

    /** The path without API Gateway's stage prefix (v1's `path`, v2's `rawPath`). */
    public function getPath(): string
    {
        $key = $this->isFormatV2() ? 'rawPath' : 'path';
        return (string) ($this->event[$key] ?? '/');
    }

    public function getUri(): string
    {
        $path = $this->getPath();
        return $this->queryString === '' ? $path : "$path?{$this->queryString}";
    }

    public function getQueryString(): string
    {
        return $this->queryString;
    }

    /** @return array<mixed> */
    public function getQueryParameters(): array
    {
        parse_str($this->queryString, $query);
        return $query;
    }

    /** @return array<string, mixed> */
    public function getRequestContext(): array
    {
        return $this->event['requestContext'] ?? [];
    }

    /** @return array<string, string> */
    public function getCookies(): array
    {
        if ($this->isFormatV2()) {
            $parts = $this->event['cookies'] ?? [];
        } elseif (isset($this->headers['cookie'][0])) {
            $parts = explode('; ', $this->headers['cookie'][0]);
        } else {
            return [];
        }
        $cookies = [];
        foreach ($parts as $part) {
            $pair = explode('=', $part, 2);
            $cookies[$pair[0]] = urldecode($pair[1] ?? '');
        }
        return $cookies;
    }

    /** @return array<string, string> */
    public function getPathParameters(): array
    {
        return $this->event['pathParameters'] ?? [];
    }

    public function getPayloadVersion(): float
    {
        return $this->payloadVersion;
    }

    public function isFormatV2(): bool
    {
        return $this->payloadVersion === 2.0;
    }

    /** URL-encoded again, as PHP behind a web server would see it. */
    private function rebuildQueryString(): string
    {
        if ($this->isFormatV2()) {
            return http_build_query(self::parseQuery((string) ($this->event['rawQueryString'] ?? '')));
        }
        $multi = $this->event['multiValueQueryStringParameters'] ?? null;
        if (isset($this->event['requestContext']['elb'])) {
            // ALB passes values still URL-encoded, as the client sent them: decode them once.
            $pairs = [];
            foreach ($multi ?? $this->event['queryStringParameters'] ?? [] as $key => $values) {
                foreach ((array) $values as $value) {
                    $pairs[] = "$key=$value";
                }
            }
            return http_build_query(self::parseQuery(implode('&', $pairs)));
        }
        if ($multi) {
            $pairs = [];
            foreach ($multi as $key => $values) {
                foreach ($values as $value) {
                    $pairs[] = $key . '=' . urlencode((string) $value);
                }
            }
            return http_build_query(self::parseQuery(implode('&', $pairs)));
        }
        if (empty($this->event['queryStringParameters'])) {
            return '';
        }
        return http_build_query($this->event['queryStringParameters']);
    }

    /**
     * Like parse_str, except that names keep their dots and spaces (parse_str turns them into
     * underscores): `a.b=1&list[]=x`.
     *
     * @return array<mixed>
     */
    private static function parseQuery(string $query): array
    {
        $query = ltrim(trim($query), '?#&');
        $result = [];
        foreach ($query === '' ? [] : explode('&', $query) as $pair) {
            if ($pair === '') {
                continue;
            }
            $parts = explode('=', $pair, 2);
            $name = urldecode($parts[0]);
            $value = urldecode($parts[1] ?? '');
            $bracket = strpos($name, '[');
            if ($bracket === false || $bracket === 0 || substr($name, -1) !== ']') {
                $result[$name] = $value;
                continue;
            }
            $keys = explode('][', substr($name, $bracket + 1, -1));
            $slot = &$result[substr($name, 0, $bracket)];
            foreach ($keys as $key) {
                if (!is_array($slot)) {
                    $slot = [];
                }
                if ($key === '') {
                    $slot[] = null;
                    end($slot);
                    $key = key($slot);
                }
                $slot = &$slot[$key];
            }
            $slot = $value;
            unset($slot);
        }
        return $result;
    }

    /** @return array<string, list<string>> */
    private function collectHeaders(): array
    {
        if (isset($this->event['multiValueHeaders'])) {
            $headers = $this->event['multiValueHeaders'];
        } else {
            $headers = array_map(static function ($value): array {
                return [$value];
            }, $this->event['headers'] ?? []);
        }
        $headers = array_change_key_case($headers, CASE_LOWER);
        if (!empty($this->event['body'])) {
            // As a web server would: a body without a type is a form.
            $headers['content-type'] = $headers['content-type'] ?? ['application/x-www-form-urlencoded'];
            $headers['content-length'] = $headers['content-length'] ?? [(string) strlen($this->getBody())];
        }
        if ($this->isFormatV2() && !empty($this->event['cookies'])) {
            $headers['cookie'] = [implode('; ', $this->event['cookies'])];
        }
        return $headers;
    }
}
