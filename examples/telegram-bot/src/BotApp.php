<?php

declare(strict_types=1);

namespace App;

/**
 * The bot: one Telegram update in, at most one message out.
 *
 * It answers `/start`, `/help` and `/hello` (also written `/hello@YourBot`, as Telegram does
 * in groups) and politely declines anything else. Updates that are not messages (edits,
 * button presses, ...) are ignored.
 */
final class BotApp
{
    public const HELP = "I know these commands:\n"
        . "/start - who I am\n"
        . "/help - this list\n"
        . "/hello - a greeting";

    public function __construct(private readonly TelegramApi $telegram)
    {
    }

    /**
     * Handles one update from the webhook.
     *
     * @param array<string, mixed> $update
     * @return string what was done, in one line for the log (no message text: it is private)
     */
    public function handle(array $update): string
    {
        $updateId = is_int($update['update_id'] ?? null) ? $update['update_id'] : '?';
        $message = $update['message'] ?? null;
        $chatId = is_array($message) && is_array($message['chat'] ?? null)
            ? ($message['chat']['id'] ?? null)
            : null;
        if (!is_int($chatId) && !is_string($chatId)) {
            return "update {$updateId}: not a message, ignored";
        }
        $text = is_string($message['text'] ?? null) ? $message['text'] : '';
        $name = $message['from']['first_name'] ?? null;
        $command = self::command($text);

        $this->telegram->sendMessage($chatId, self::reply($command, is_string($name) ? $name : 'there'));

        return "update {$updateId}: chat {$chatId}: " . ($command ?? 'text') . ' answered';
    }

    public static function reply(?string $command, string $name): string
    {
        return match ($command) {
            '/start' => "Hello, {$name}! I am a Telegram bot running on Lamina (PHP). "
                . 'Send /help to see what I can do.',
            '/help' => self::HELP,
            '/hello' => "Hello, {$name}! Nice to meet you.",
            default => 'Sorry, I did not understand that. Send /help to see what I can do.',
        };
    }

    /** `/start` for "/start", "/Start@YourBot" or "/start some-payload"; null for plain text. */
    public static function command(string $text): ?string
    {
        if (preg_match('~^/(\w+)(?:@\w+)?(?:\s|$)~', $text, $match) !== 1) {
            return null;
        }

        return '/' . strtolower($match[1]);
    }
}
