<?php
declare(strict_types=1);

namespace App;

/** Plain PHP templates with escaping, rendered into a string. */
final class View
{
    public function __construct(private string $dir)
    {
    }

    /** @param array<string, mixed> $data */
    public function render(string $template, array $data): string
    {
        $e = static fn (mixed $value): string => htmlspecialchars((string) $value, ENT_QUOTES);
        extract($data);
        ob_start();
        require $this->dir . '/' . $template . '.php';
        return (string) ob_get_clean();
    }
}
