<?php declare(strict_types=1);

namespace Bref\Event\Http;

use Bref\Context\Context;
use Psr\Http\Server\RequestHandlerInterface;

/**
 * Runs a PSR-15 request handler on HTTP events, as Bref's class of the same name (loaded only
 * when the app does not ship Bref). PSR-7 requests are built with the implementation the app
 * has: nyholm/psr7 (Bref's) or guzzlehttp/psr7. Unlike Bref's, multipart bodies are not
 * parsed into uploaded files: ship bref/bref for that.
 */
class Psr15Handler extends HttpHandler
{
    private const REQUEST_CLASSES = ['Nyholm\Psr7\ServerRequest', 'GuzzleHttp\Psr7\ServerRequest'];

    /** @var RequestHandlerInterface */
    private $handler;

    public function __construct(RequestHandlerInterface $handler)
    {
        $this->handler = $handler;
    }

    public function handleRequest(HttpRequestEvent $event, Context $context): HttpResponse
    {
        $response = $this->handler->handle(self::request($event, $context));
        $body = $response->getBody();
        if ($body->isSeekable()) {
            $body->rewind();
        }
        return new HttpResponse($body->getContents(), $response->getHeaders(), $response->getStatusCode());
    }

    /** @return \Psr\Http\Message\ServerRequestInterface */
    private static function request(HttpRequestEvent $event, Context $context)
    {
        $class = null;
        foreach (self::REQUEST_CLASSES as $candidate) {
            if (class_exists($candidate)) {
                $class = $candidate;
                break;
            }
        }
        if ($class === null) {
            throw new \RuntimeException('A PSR-15 handler needs a PSR-7 implementation in vendor/: require bref/bref (or nyholm/psr7, or guzzlehttp/psr7) with Composer');
        }
        $server = [
            'SERVER_PROTOCOL' => $event->getProtocolVersion(),
            'REQUEST_METHOD' => $event->getMethod(),
            'REQUEST_TIME' => time(),
            'REQUEST_TIME_FLOAT' => microtime(true),
            'QUERY_STRING' => $event->getQueryString(),
            'DOCUMENT_ROOT' => getcwd(),
            'REQUEST_URI' => $event->getUri(),
            'REMOTE_ADDR' => $event->getSourceIp(),
        ];
        $request = new $class(
            $event->getMethod(),
            $event->getUri(),
            $event->getHeaders(),
            $event->getBody(),
            $event->getProtocolVersion(),
            $server
        );
        foreach ($event->getPathParameters() as $name => $value) {
            $request = $request->withAttribute($name, $value);
        }
        $form = null;
        $type = (string) $event->getContentType();
        if ($event->getMethod() === 'POST' && strncmp($type, 'application/x-www-form-urlencoded', 33) === 0) {
            parse_str($event->getBody(), $form);
        }
        return $request
            ->withCookieParams($event->getCookies())
            ->withQueryParams($event->getQueryParameters())
            ->withParsedBody($form)
            ->withAttribute('lambda-event', $event)
            ->withAttribute('lambda-context', $context);
    }
}
