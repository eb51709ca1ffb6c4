<?php

declare(strict_types=1);

namespace App;

/** A Bot API call that failed: Telegram unreachable, or an answer with `"ok": false`. */
final class TelegramError extends \RuntimeException
{
}
