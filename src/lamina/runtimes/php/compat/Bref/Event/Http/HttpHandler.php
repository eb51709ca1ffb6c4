<?php declare(strict_types=1);

namespace Bref\Event\Http;

use Bref\Context\Context;
use Bref\Event\Handler;

/**
 * A handler of HTTP events with typed requests and responses, as Bref's class of the same
 * name (loaded only when the app does not ship Bref): implement handleRequest().
 */
abstract class HttpHandler implements Handler
{
    abstract public function handleRequest(HttpRequestEvent $event, Context $context): HttpResponse;

    /**
     * @param mixed $event
     * @return array<mixed>
     */
    public function handle($event, Context $context)
    {
        // Bref's warmer: keep the instance busy briefly so that warmers reach several.
        if (is_array($event) && ($event['warmer'] ?? null) === true) {
            usleep(10000);
            return ['Lambda is warm'];
        }
        $request = new HttpRequestEvent($event);
        $response = $this->handleRequest($request, $context);
        if ($request->isFormatV2()) {
            return $response->toApiGatewayFormatV2();
        }
        return $response->toApiGatewayFormat($request->hasMultiHeader());
    }
}
