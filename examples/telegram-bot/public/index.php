<?php

declare(strict_types=1);

// The front controller: Telegram POSTs each update here as JSON. Bref's FPM runtime runs this
// file for every HTTP request of the `web` function, whether it came through API Gateway or
// the ALB, as nginx and php-fpm would.

use App\BotApp;
use App\TelegramApi;
use App\TelegramError;

require __DIR__ . '/../src/autoload.php';

/** @param array<string, mixed> $body */
function respond(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($body, JSON_THROW_ON_ERROR);
}

// Under php-fpm, stderr is the function's log: `lamina logs -f web` shows these lines.
function logLine(string $line): void
{
    file_put_contents('php://stderr', "[telegram-bot] {$line}\n");
}

if (($_SERVER['REQUEST_METHOD'] ?? 'GET') !== 'POST') {
    respond(200, ['ok' => true, 'description' => 'Telegram bot webhook: POST updates here']);
    return;
}

$update = json_decode((string) file_get_contents('php://input'), true);
if (!is_array($update)) {
    logLine('refused a request whose body is not a Telegram update');
    respond(400, ['ok' => false, 'description' => 'the body must be a Telegram update (JSON)']);
    return;
}

try {
    logLine((new BotApp(TelegramApi::fromEnvironment()))->handle($update));
} catch (TelegramError $error) {
    // Telegram resends an update until it gets a 2xx, holding back the ones after it: a reply
    // that failed is logged, not retried forever.
    $updateId = is_int($update['update_id'] ?? null) ? $update['update_id'] : '?';
    logLine("update {$updateId}: {$error->getMessage()}");
}
respond(200, ['ok' => true]);
