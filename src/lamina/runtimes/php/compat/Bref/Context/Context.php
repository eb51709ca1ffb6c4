<?php declare(strict_types=1);

namespace Bref\Context;

/**
 * The invocation's context, as Bref's class of the same name (loaded only when the app does
 * not ship Bref).
 */
final class Context implements \JsonSerializable
{
    /** @var string */
    private $awsRequestId;
    /** @var int the deadline, Unix time in milliseconds */
    private $deadlineMs;
    /** @var string */
    private $invokedFunctionArn;
    /** @var string */
    private $traceId;

    public function __construct(string $awsRequestId, int $deadlineMs, string $invokedFunctionArn, string $traceId)
    {
        $this->awsRequestId = $awsRequestId;
        $this->deadlineMs = $deadlineMs;
        $this->invokedFunctionArn = $invokedFunctionArn;
        $this->traceId = $traceId;
    }

    /** A context for tests: five minutes left. */
    public static function fake(): self
    {
        $deadline = (int) (microtime(true) * 1000) + 5 * 60 * 1000;
        return new self('fake-aws-request-id', $deadline, 'fake-invoked-function-arn', 'fake-trace-id');
    }

    public function getAwsRequestId(): string
    {
        return $this->awsRequestId;
    }

    public function getRemainingTimeInMillis(): int
    {
        return $this->deadlineMs - (int) (microtime(true) * 1000);
    }

    public function getDeadlineMs(): int
    {
        return $this->deadlineMs;
    }

    /** Includes the version or alias when the caller named one. */
    public function getInvokedFunctionArn(): string
    {
        return $this->invokedFunctionArn;
    }

    /** The X-Ray trace header: `Root=1-...;Parent=...;Sampled=0`. */
    public function getTraceId(): string
    {
        return $this->traceId;
    }

    /** @return array{awsRequestId: string, deadlineMs: int, invokedFunctionArn: string, traceId: string} */
    public function jsonSerialize(): array
    {
        return [
            'awsRequestId' => $this->awsRequestId,
            'deadlineMs' => $this->deadlineMs,
            'invokedFunctionArn' => $this->invokedFunctionArn,
            'traceId' => $this->traceId,
        ];
    }
}
