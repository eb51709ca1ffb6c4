<?php declare(strict_types=1);

namespace Bref\Event;

use Bref\Context\Context;

/** A handler of any Lambda event, as Bref's interface of the same name. */
interface Handler
{
    /**
     * @param mixed $event the decoded event
     * @return mixed anything json_encode accepts
     */
    public function handle($event, Context $context);
}
