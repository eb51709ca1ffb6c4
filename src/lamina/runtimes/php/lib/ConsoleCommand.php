<?php declare(strict_types=1);

namespace Lamina\Runtime;

/**
 * Bref's console runtime (reference 3.6): each event runs `php <handler> <arguments>` with
 * the arguments the event gives (a string, or `{"cli": "..."}`), streams its output to the
 * log and returns it. The arguments go through the shell, as in Bref: they are the command
 * line the caller asked for.
 */
final class ConsoleCommand
{
    private const KEEP = 5 * 1024 * 1024; // the output returned: its end, below Lambda's 6 MB

    /** @var string */
    private $file;

    public function __construct(string $file)
    {
        $this->file = $file;
    }

    /**
     * @param mixed $event
     * @return array{exitCode: int, output: string}
     */
    public function run($event, \Bref\Context\Context $context): array
    {
        if (is_array($event)) {
            $arguments = (string) ($event['cli'] ?? '');
        } elseif (is_string($event)) {
            $arguments = $event;
        } else {
            $arguments = '';
        }
        // `exec`: the shell becomes PHP, so a timeout kills the command itself.
        $command = sprintf('exec %s %s %s 2>&1', escapeshellarg(PHP_BINARY), escapeshellarg($this->file), $arguments);
        // The environment has LAMBDA_INVOCATION_CONTEXT already, as Bref gives the command.
        $process = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w']], $pipes, null, getenv());
        if (!is_resource($process)) {
            throw new \RuntimeException("cannot run $command");
        }
        // Bref stops the command a second before the invocation's deadline.
        $timeout = max(1, $context->getRemainingTimeInMillis() / 1000 - 1);
        $output = self::collect($pipes[1], microtime(true) + $timeout);
        fclose($pipes[1]);
        if ($output === null) {
            proc_terminate($process, 9);
            proc_close($process);
            throw new \RuntimeException(sprintf('The process "%s" exceeded the timeout of %s seconds.', $command, $timeout));
        }
        $exitCode = proc_close($process);
        if ($exitCode > 0) {
            throw new \Exception('The command exited with a non-zero status code: ' . $exitCode);
        }
        return ['exitCode' => $exitCode, 'output' => $output];
    }

    /**
     * Echoes the command's output as it comes; null if `deadline` passes first.
     *
     * @param resource $pipe
     */
    private static function collect($pipe, float $deadline): ?string
    {
        stream_set_blocking($pipe, false);
        $output = '';
        while (!feof($pipe)) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                return null;
            }
            $read = [$pipe];
            $write = $except = null;
            if (@stream_select($read, $write, $except, (int) $left, (int) (fmod($left, 1) * 1e6)) === 0) {
                continue;
            }
            $chunk = (string) fread($pipe, 65536);
            echo $chunk;
            $output .= $chunk;
            if (strlen($output) > 2 * self::KEEP) {
                $output = substr($output, -self::KEEP);
            }
        }
        return strlen($output) > self::KEEP ? substr($output, -self::KEEP) : $output;
    }
}
