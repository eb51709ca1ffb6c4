<?php declare(strict_types=1);

namespace Lamina\Runtime;

/**
 * Error payloads and log lines in Bref's formats (brefphp/bref src/Runtime/LambdaRuntime.php),
 * so that log searches and alerts written for Bref on AWS keep working.
 */
final class Errors
{
    /** `<request id>\tInvoke Error\t{"errorType", "errorMessage", "errorLocation", "stack", "previous"}` */
    public static function invokeErrorLine(string $requestId, \Throwable $error): string
    {
        $formatted = self::describe($error, 'stack');
        $previous = [];
        for ($cause = $error->getPrevious(); $cause !== null; $cause = $cause->getPrevious()) {
            $previous[] = self::describe($cause, 'stack');
        }
        if ($previous) {
            $formatted['previous'] = $previous;
        }
        return "$requestId\tInvoke Error\t" . self::json($formatted) . PHP_EOL;
    }

    /** The body of `/invocation/{id}/error`: what the invoker receives. */
    public static function payload(\Throwable $error): string
    {
        return self::json(self::describe($error, 'stackTrace'));
    }

    /** @param string|\Throwable $error */
    public static function initErrorLog($error): string
    {
        $notice = "The function failed to start. AWS Lambda will restart the process, do not be surprised if you see the error message twice.\n";
        if (is_string($error)) {
            return "Fatal error: $error\n$notice";
        }
        $detail = self::json([
            'message' => $error->getMessage(),
            'type' => self::type($error),
            'stackTrace' => self::stack($error),
        ]);
        $line = sprintf(
            "Fatal error: %s in %s:%d\n %s\n",
            self::type($error) . ': ' . $error->getMessage(),
            $error->getFile(),
            $error->getLine(),
            $detail
        );
        return $line . $notice;
    }

    /** @param string|\Throwable $error */
    public static function initPayload($error): string
    {
        if (is_string($error)) {
            return self::json(['errorMessage' => $error, 'errorType' => 'Internal', 'stackTrace' => []]);
        }
        return self::json([
            'errorMessage' => $error->getMessage(),
            'errorType' => self::type($error),
            'stackTrace' => self::stack($error),
        ]);
    }

    /** @param array{type: int, message: string, file: string, line: int} $error from error_get_last() */
    public static function fatal(array $error): PhpFatalError
    {
        $names = [
            E_ERROR => 'E_ERROR',
            E_PARSE => 'E_PARSE',
            E_CORE_ERROR => 'E_CORE_ERROR',
            E_COMPILE_ERROR => 'E_COMPILE_ERROR',
            E_USER_ERROR => 'E_USER_ERROR',
            E_RECOVERABLE_ERROR => 'E_RECOVERABLE_ERROR',
        ];
        $type = $names[$error['type']] ?? 'E_ERROR';
        return new PhpFatalError($type, $error['message'], $error['file'], $error['line']);
    }

    public static function exited(): PhpFatalError
    {
        return new PhpFatalError(
            'Runtime.ExitError',
            'The handler ended the PHP process (exit or die) before returning a result',
            '',
            0
        );
    }

    /** @return array<string, mixed> */
    private static function describe(\Throwable $error, string $stackKey): array
    {
        $described = ['errorType' => self::type($error), 'errorMessage' => $error->getMessage()];
        if ($error->getFile() !== '') {
            $described['errorLocation'] = 'File: ' . $error->getFile() . ', Line: ' . $error->getLine();
        }
        $described[$stackKey] = self::stack($error);
        return $described;
    }

    private static function type(\Throwable $error): string
    {
        return $error instanceof PhpFatalError ? $error->type : get_class($error);
    }

    /** @return list<string> */
    private static function stack(\Throwable $error): array
    {
        if ($error instanceof PhpFatalError) {
            // A fatal error has no trace: only where it struck.
            return $error->getFile() === '' ? [] : ['#0 ' . $error->getFile() . '(' . $error->getLine() . ')'];
        }
        return explode(PHP_EOL, $error->getTraceAsString());
    }

    /** @param array<string, mixed> $value */
    private static function json(array $value): string
    {
        // Substituted rather than lost: a message with broken UTF-8 must still be reported.
        return (string) json_encode($value, JSON_INVALID_UTF8_SUBSTITUTE);
    }
}

/** A fatal PHP error (or an exit) seen by the shutdown function, shaped like an exception. */
final class PhpFatalError extends \Exception
{
    /** @var string E_ERROR, E_COMPILE_ERROR, ... or Runtime.ExitError */
    public $type;

    public function __construct(string $type, string $message, string $file, int $line)
    {
        parent::__construct($message);
        $this->type = $type;
        $this->file = $file;
        $this->line = $line;
    }
}
