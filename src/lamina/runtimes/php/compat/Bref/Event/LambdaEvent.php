<?php declare(strict_types=1);

namespace Bref\Event;

/** A typed Lambda event that can give back its raw data. */
interface LambdaEvent
{
    /** @return array<mixed> */
    public function toArray(): array;
}
