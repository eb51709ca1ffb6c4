<?php declare(strict_types=1);

namespace Lamina\Runtime;

/** Finding the function's handler and calling it, as Bref does (reference 3.4). */
final class Handlers
{
    /**
     * The handler `_HANDLER` names: through the app's Bref container when it ships Bref (so
     * `Bref::setContainer()` of the Laravel and Symfony bridges works), else the value that
     * `$LAMBDA_TASK_ROOT/$_HANDLER` returns, as Bref's FileHandlerLocator reads it.
     *
     * @return mixed
     */
    public static function locate(string $name, string $taskRoot, bool $appShipsBref)
    {
        if ($appShipsBref && method_exists('Bref\Bref', 'getContainer')) {
            $handler = \Bref\Bref::getContainer()->get($name);
        } else {
            $handler = self::requireFile("$taskRoot/$name");
        }
        if ($handler instanceof \Psr\Http\Server\RequestHandlerInterface) {
            $handler = new \Bref\Event\Http\Psr15Handler($handler);
        }
        return $handler;
    }

    /** @return object|array<mixed> */
    private static function requireFile(string $file)
    {
        if (!is_file($file)) {
            throw new \Bref\Runtime\HandlerNotFound("Handler `$file` doesn't exist");
        }
        $handler = require $file;
        if (!is_object($handler) && !is_array($handler)) {
            throw new \Bref\Runtime\HandlerNotFound("Handler `$file` must return a function or object handler. See https://bref.sh/docs/runtimes/function.html");
        }
        return $handler;
    }

    /**
     * @param mixed $handler
     * @param mixed $event
     * @return mixed
     */
    public static function invoke($handler, $event, \Bref\Context\Context $context)
    {
        if ($handler instanceof \Bref\Event\Handler) {
            return $handler->handle($event, $context);
        }
        if (is_callable($handler)) {
            return $handler($event, $context);
        }
        // Beyond Bref: any object with handle($event, $context), interface or not.
        if (is_object($handler) && method_exists($handler, 'handle')) {
            return $handler->handle($event, $context);
        }
        throw new \Exception('The lambda handler must be a callable or implement handler interfaces');
    }
}
