<?php declare(strict_types=1);

namespace Bref\Event\Http;

/**
 * An HTTP response in the shapes API Gateway and ALB expect from a Lambda proxy integration,
 * as Bref's class of the same name (loaded only when the app does not ship Bref).
 */
final class HttpResponse
{
    /** @var string */
    private $body;
    /** @var array<string, string|list<string>> */
    private $headers;
    /** @var int */
    private $statusCode;

    /** @param array<string, string|list<string>> $headers */
    public function __construct(string $body, array $headers = [], int $statusCode = 200)
    {
        $this->body = $body;
        $this->headers = $headers;
        $this->statusCode = $statusCode;
    }

    /**
     * Payload 1.0 and ALB: one value per header (the last one), or every value under
     * `multiValueHeaders` when the request came with them.
     *
     * @return array<string, mixed>
     */
    public function toApiGatewayFormat(bool $multiHeaders = false): array
    {
        $base64 = (bool) getenv('BREF_BINARY_RESPONSES');
        $headers = [];
        foreach ($this->headers as $name => $values) {
            $name = self::capitalize((string) $name);
            if ($multiHeaders) {
                $headers[$name] = is_array($values) ? $values : [$values];
            } else {
                $headers[$name] = is_array($values) ? end($values) : $values;
            }
        }
        return [
            'isBase64Encoded' => $base64,
            'statusCode' => $this->statusCode,
            $multiHeaders ? 'multiValueHeaders' : 'headers' => $headers ?: new \stdClass(),
            'body' => $base64 ? base64_encode($this->body) : $this->body,
        ];
    }

    /**
     * Payload 2.0: `Set-Cookie` values become `cookies`, other repeated headers are joined.
     *
     * @return array<string, mixed>
     */
    public function toApiGatewayFormatV2(): array
    {
        $base64 = (bool) getenv('BREF_BINARY_RESPONSES');
        $headers = [];
        $cookies = [];
        foreach ($this->headers as $name => $values) {
            $name = self::capitalize((string) $name);
            if ($name === 'Set-Cookie') {
                $cookies = is_array($values) ? $values : [$values];
            } else {
                $headers[$name] = is_array($values) ? implode(', ', $values) : $values;
            }
        }
        return [
            'cookies' => $cookies,
            'isBase64Encoded' => $base64,
            'statusCode' => $this->statusCode,
            'headers' => $headers ?: new \stdClass(),
            'body' => $base64 ? base64_encode($this->body) : $this->body,
        ];
    }

    /** `content-type` -> `Content-Type`. */
    private static function capitalize(string $name): string
    {
        return str_replace(' ', '-', ucwords(str_replace('-', ' ', $name)));
    }
}
