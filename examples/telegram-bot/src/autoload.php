<?php

declare(strict_types=1);

// A PSR-4 autoloader for the `App\` namespace, standing in for Composer's: `App\BotApp` is
// src/BotApp.php. With Composer, `"autoload": {"psr-4": {"App\\": "src/"}}` does the same.
spl_autoload_register(static function (string $class): void {
    $prefix = 'App\\';
    if (!str_starts_with($class, $prefix)) {
        return;
    }
    $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
