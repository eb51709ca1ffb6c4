<?php declare(strict_types=1);

namespace Lamina\Runtime;

/** PHP errors that end the script: no handler sees them, only shutdown functions do. */
const FATAL = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR | E_RECOVERABLE_ERROR;

/**
 * Serve invocations until the environment is stopped; returns the exit code.
 *
 * This process is a zygote: it forks a worker that loads the function and loops on the
 * Runtime API. A worker that wants a fresh process (after a failed invocation, after
 * BREF_LOOP_MAX invocations) exits with 0 and the zygote forks the next one at once, the way
 * Bref's bootstrap loop starts a new PHP. The environment stays up meanwhile, and nothing the
 * user's code opened survives into the next worker. Any other exit ends the environment.
 */
function main(string $kind): int
{
    if (!function_exists('pcntl_fork')) {
        return serve($kind, false);
    }
    while (true) {
        $pid = pcntl_fork();
        if ($pid === -1) {
            return serve($kind, false);
        }
        if ($pid === 0) {
            return serve($kind, true);
        }
        while (pcntl_waitpid($pid, $status) === -1) {
            if (pcntl_get_last_error() !== PCNTL_EINTR) {
                return 1;
            }
        }
        if (pcntl_wifsignaled($status)) {
            // Die as the worker died, so the platform reports "signal: killed" and the like.
            $signal = pcntl_wtermsig($status);
            if (function_exists('posix_kill')) {
                posix_kill(getmypid(), $signal);
            }
            return 128 + $signal;
        }
        $code = pcntl_wexitstatus($status);
        if ($code !== 0) {
            return $code;
        }
    }
}

function serve(string $kind, bool $forked): int
{
    $runtime = new Runtime(new RuntimeApi((string) getenv('AWS_LAMBDA_RUNTIME_API')), $forked);
    return $kind === 'console' ? $runtime->runConsole() : $runtime->runFunction();
}

final class Runtime
{
    /** @var RuntimeApi */
    private $api;
    /** @var bool a zygote forks a fresh worker when this one exits with 0 */
    private $forked;
    /** @var bool */
    private $initializing = true;
    /** @var string|null the invocation in flight, until its result is posted */
    private $requestId = null;
    /** @var bool */
    private $brefHooks = false;

    public function __construct(RuntimeApi $api, bool $forked)
    {
        $this->api = $api;
        $this->forked = $forked;
        register_shutdown_function([$this, 'onShutdown']);
    }

    public function runFunction(): int
    {
        $taskRoot = taskRoot();
        $this->initialize(function () use ($taskRoot): void {
            $autoload = getenv('BREF_AUTOLOAD_PATH') ?: "$taskRoot/vendor/autoload.php";
            if (is_file($autoload)) {
                // The app's own Bref, PSR and vendor classes come first; ours fill the gaps.
                require $autoload;
                // Behind the app's loaders, whichever way they registered: its classes win.
                spl_autoload_unregister(__NAMESPACE__ . '\\autoload');
                spl_autoload_register(__NAMESPACE__ . '\\autoload');
                $this->brefHooks = class_exists('Bref\Bref');
                loadSecrets();
            }
            if ($this->brefHooks) {
                self::hook('triggerHooks', 'beforeStartup');
                self::event('beforeStartup');
            }
        }, 'Runtime.UnknownReason');
        $handler = null;
        $this->initialize(function () use (&$handler, $taskRoot): void {
            $handler = Handlers::locate((string) getenv('_HANDLER'), $taskRoot, $this->brefHooks);
        }, 'Runtime.NoSuchHandler');
        $this->initializing = false;

        // Bref starts a new PHP process after each invocation by default (BREF_LOOP_MAX=1);
        // Lamina keeps the worker unless BREF_LOOP_MAX asks for a limit.
        $loopMax = (int) getenv('BREF_LOOP_MAX');
        for ($loops = 1; ; $loops++) {
            $succeeded = $this->processNextEvent($handler);
            // A failure may leave the application in an unclean state: Bref starts afresh.
            if ($this->forked && (!$succeeded || ($loopMax > 0 && $loops >= $loopMax))) {
                return 0;
            }
        }
    }

    public function runConsole(): int
    {
        $file = taskRoot() . '/' . getenv('_HANDLER');
        if (!is_file($file)) {
            $this->failInitialization("Handler `$file` doesn't exist", 'Runtime.NoSuchHandler');
        }
        $this->initializing = false;
        $command = new ConsoleCommand($file);
        while (true) {
            $this->processNextEvent([$command, 'run']);
        }
    }

    /** @param callable(): void $step */
    private function initialize(callable $step, string $reason): void
    {
        try {
            $step();
        } catch (\Throwable $e) {
            $this->failInitialization($e, $reason);
        }
    }

    /** @param mixed $handler */
    private function processNextEvent($handler): bool
    {
        [$headers, $body] = $this->api->next();
        $requestId = $headers['lambda-runtime-aws-request-id'] ?? '';
        if ($requestId === '') {
            throw new \Exception('Failed to determine the Lambda invocation ID');
        }
        $this->requestId = $requestId;
        $deadlineMs = (int) ($headers['lambda-runtime-deadline-ms'] ?? 0);
        $arn = $headers['lambda-runtime-invoked-function-arn'] ?? '';
        $traceId = $headers['lambda-runtime-trace-id'] ?? '';
        // Bref's Context::jsonSerialize(), whichever Context class the app has.
        $invocation = ['awsRequestId' => $requestId, 'deadlineMs' => $deadlineMs, 'invokedFunctionArn' => $arn, 'traceId' => $traceId];
        setEnv('LAMBDA_INVOCATION_CONTEXT', (string) json_encode($invocation));
        setEnv('LAMBDA_REQUEST_ID', $requestId);
        setEnv('_X_AMZN_TRACE_ID', $traceId);
        $event = null;
        try {
            $context = new \Bref\Context\Context($requestId, $deadlineMs, $arn, $traceId);
            $event = json_decode($body, true, 512, JSON_THROW_ON_ERROR);
            if ($this->brefHooks) {
                self::hook('triggerHooks', 'beforeInvoke');
                self::event('beforeInvoke', $handler, $event, $context);
            }
            $result = Handlers::invoke($handler, $event, $context);
            $this->api->respond($requestId, encode($result));
        } catch (\Throwable $e) {
            $this->signalFailure($requestId, $e);
            $this->requestId = null;
            return false;
        }
        $this->requestId = null;
        if ($this->brefHooks) {
            try {
                self::event('afterInvoke', $handler, $event, $context, $result);
            } catch (\Throwable $e) {
                // The response is out: the invocation can no longer fail, only be logged.
                echo Errors::invokeErrorLine($requestId, $e);
                return false;
            }
        }
        return true;
    }

    private function signalFailure(string $requestId, \Throwable $error): void
    {
        echo Errors::invokeErrorLine($requestId, $error);
        // After a 413 the response counts as sent: an error post would be refused.
        if (!$error instanceof \Bref\Runtime\ResponseTooBig) {
            $this->api->fail($requestId, Errors::payload($error));
        }
    }

    /**
     * Bref's `failInitialization`: log, post /init/error, exit (which ends the environment).
     *
     * @param string|\Throwable $error
     */
    private function failInitialization($error, string $reason): void
    {
        echo Errors::initErrorLog($error);
        $this->api->failInit(Errors::initPayload($error), $reason);
        exit(1);
    }

    /** Fatal errors, and handlers that call exit(), during init or an invocation. */
    public function onShutdown(): void
    {
        $requestId = $this->requestId;
        if ($requestId === null && !$this->initializing) {
            // Between invocations (the Runtime API failed, say): PHP's own exit ends the
            // environment, rather than a worker restarting into the same failure forever.
            return;
        }
        $error = error_get_last();
        $fatal = $error !== null && ($error['type'] & FATAL) !== 0;
        if (!$fatal && $requestId === null) {
            return;
        }
        // A fatal error may have been running out of memory: posting it needs some.
        ini_set('memory_limit', '-1');
        $failure = $fatal ? Errors::fatal($error) : Errors::exited();
        try {
            if ($this->initializing) {
                echo Errors::initErrorLog($failure);
                $this->api->failInit(Errors::initPayload($failure), 'Runtime.UnknownReason');
                exit(1);
            }
            if ($requestId !== null) {
                $this->requestId = null;
                $this->signalFailure($requestId, $failure);
            }
        } catch (\Throwable $e) {
            echo 'Fatal error: ' . get_class($e) . ': ' . $e->getMessage() . PHP_EOL;
            exit(1);
        }
        // The zygote starts a fresh worker; without one, the environment ends here.
        exit($this->forked ? 0 : 1);
    }

    /** @param mixed ...$arguments */
    private static function hook(string $method, ...$arguments): void
    {
        if (method_exists('Bref\Bref', $method)) {
            \Bref\Bref::$method(...$arguments);
        }
    }

    /** @param mixed ...$arguments */
    private static function event(string $name, ...$arguments): void
    {
        if (method_exists('Bref\Bref', 'events')) {
            $events = \Bref\Bref::events();
            if (method_exists($events, $name)) {
                $events->$name(...$arguments);
            }
        }
    }
}

/** Lamina's own classes from lib/, and Bref's from compat/ when the app has none. */
function autoload(string $class): void
{
    if (strncmp($class, 'Lamina\\Runtime\\', 15) === 0) {
        $file = __DIR__ . '/' . substr($class, 15) . '.php';
    } elseif (strncmp($class, 'Bref\\', 5) === 0) {
        $file = dirname(__DIR__) . '/compat/' . strtr($class, '\\', '/') . '.php';
    } else {
        return;
    }
    if (is_file($file)) {
        require $file;
    }
}

function taskRoot(): string
{
    return getenv('LAMBDA_TASK_ROOT') ?: (string) getcwd();
}

function setEnv(string $name, string $value): void
{
    putenv("$name=$value");
    $_SERVER[$name] = $_ENV[$name] = $value;
}

/** Resolves `bref-ssm:` variables when the app ships Bref's secrets loader (reference 3.8). */
function loadSecrets(): void
{
    if (class_exists('Bref\LazySecretsLoader')) {
        \Bref\LazySecretsLoader::loadSecretEnvironmentVariables();
    } elseif (class_exists('Bref\Secrets\Secrets')) {
        \Bref\Secrets\Secrets::loadSecretEnvironmentVariables();
    }
}

/** @param mixed $result */
function encode($result): string
{
    $json = json_encode($result);
    if ($json === false) {
        // Bref's message, word for word: its docs explain the fix.
        throw new \Exception(sprintf(
            "The Lambda response cannot be encoded to JSON.\nThis error usually happens when you try to return binary content. If you are writing an HTTP application and you want to return a binary HTTP response (like an image, a PDF, etc.), please read this guide: https://bref.sh/docs/runtimes/http.html#binary-requests-and-responses\nHere is the original JSON error: '%s'",
            json_last_error_msg()
        ));
    }
    return $json;
}
