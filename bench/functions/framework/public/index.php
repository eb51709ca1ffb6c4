<?php
// Front controller: every request of the app comes here, as in a PHP framework.
declare(strict_types=1);

require __DIR__ . '/../src/Router.php';
require __DIR__ . '/../src/View.php';
require __DIR__ . '/../src/Catalog.php';

use App\Catalog;
use App\Router;
use App\View;

$router = new Router();
$view = new View(__DIR__ . '/../templates');

$router->get('/app/', fn () => $view->render('page', [
    'title' => 'Home',
    'products' => [],
]));
$router->get('/app/products', fn () => $view->render('page', [
    'title' => 'Products',
    'products' => Catalog::all(),
]));
$router->get('/app/products/{id}', fn (string $id) => $view->render('page', [
    'title' => 'Product ' . $id,
    'products' => array_filter(Catalog::all(), fn (array $p) => $p['id'] === (int) $id),
]));

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
[$status, $body] = $router->dispatch($_SERVER['REQUEST_METHOD'] ?? 'GET', $path);
http_response_code($status);
header('Content-Type: text/html; charset=UTF-8');
echo $body;
