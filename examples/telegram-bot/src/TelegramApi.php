<?php

declare(strict_types=1);

namespace App;

/**
 * The few Bot API methods the bot calls, over HTTPS with PHP's own streams (no curl needed).
 *
 * Every method is `POST <base URL>/bot<token>/<method>` with a JSON body, and every answer is
 * JSON `{"ok": true, "result": ...}` or `{"ok": false, "description": ...}`.
 */
final class TelegramApi
{
    public function __construct(
        private readonly string $baseUrl,
        private readonly string $token,
        private readonly float $timeoutSeconds = 10.0,
    ) {
    }

    public static function fromEnvironment(): self
    {
        $token = getenv('BOT_TOKEN');
        if ($token === false || $token === '') {
            throw new TelegramError('BOT_TOKEN is not set; put it with `lamina params put /app/bot-token`');
        }
        $baseUrl = getenv('TELEGRAM_API_URL') ?: 'https://api.telegram.org';

        return new self(rtrim($baseUrl, '/'), $token);
    }

    public function sendMessage(int|string $chatId, string $text): void
    {
        $this->call('sendMessage', ['chat_id' => $chatId, 'text' => $text]);
    }

    /**
     * @param array<string, mixed> $parameters
     * @return mixed the answer's `result`
     */
    private function call(string $method, array $parameters): mixed
    {
        $context = stream_context_create([
            'http' => [
                'method' => 'POST',
                'header' => "Content-Type: application/json\r\n",
                'content' => json_encode($parameters, JSON_THROW_ON_ERROR),
                'timeout' => $this->timeoutSeconds,
                // Read the JSON error Telegram sends with a 4xx instead of failing blind.
                'ignore_errors' => true,
            ],
        ]);
        $body = @file_get_contents("{$this->baseUrl}/bot{$this->token}/{$method}", false, $context);
        if ($body === false) {
            $reason = error_get_last()['message'] ?? 'unknown error';
            throw new TelegramError("{$method}: cannot reach {$this->baseUrl}: " . $this->redact($reason));
        }
        $answer = json_decode($body, true);
        if (!is_array($answer) || ($answer['ok'] ?? false) !== true) {
            $description = is_array($answer) ? (string) ($answer['description'] ?? '') : 'not JSON';
            throw new TelegramError("{$method}: the Bot API refused the call: " . $this->redact($description));
        }

        return $answer['result'] ?? null;
    }

    // PHP's stream warnings quote the URL, and the URL holds the token: keep it out of logs.
    private function redact(string $text): string
    {
        return str_replace($this->token, '<token>', $text);
    }
}
