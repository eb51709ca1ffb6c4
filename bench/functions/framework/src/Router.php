<?php
declare(strict_types=1);

namespace App;

/** Maps a method and a path pattern (`/products/{id}`) to a handler. */
final class Router
{
    /** @var array<int, array{string, string, callable}> */
    private array $routes = [];

    public function get(string $pattern, callable $handler): void
    {
        $regex = '#' . preg_replace('#\{(\w+)\}#', '(?P<$1>[^/]+)', $pattern) . '$#';
        $this->routes[] = ['GET', $regex, $handler];
    }

    /** @return array{int, string} */
    public function dispatch(string $method, string $path): array
    {
        foreach ($this->routes as [$verb, $regex, $handler]) {
            // Matched at the end of the path: the app may be served under a base path.
            if ($verb === $method && preg_match($regex, $path, $match)) {
                $args = array_filter($match, 'is_string', ARRAY_FILTER_USE_KEY);
                return [200, $handler(...array_values($args))];
            }
        }
        return [404, '<h1>Not found</h1>'];
    }
}
