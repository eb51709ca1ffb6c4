<?php declare(strict_types=1);

namespace Bref\Event;

/** A typed handler was invoked with an event of another kind. */
final class InvalidLambdaEvent extends \Exception
{
    /** @param mixed $event */
    public function __construct(string $expectedEventType, $event)
    {
        $data = print_r($event, true);
        parent::__construct("This handler expected to be invoked with a $expectedEventType event. Instead, the handler was invoked with invalid event data: $data");
    }
}
