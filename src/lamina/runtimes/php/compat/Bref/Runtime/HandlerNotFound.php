<?php declare(strict_types=1);

namespace Bref\Runtime;

/** `_HANDLER` names no file, or the file returns no handler (init error Runtime.NoSuchHandler). */
class HandlerNotFound extends \Exception
{
}
