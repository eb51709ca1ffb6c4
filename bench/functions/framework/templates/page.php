<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title><?= $e($title) ?></title></head>
<body>
<h1><?= $e($title) ?></h1>
<table>
  <tr><th>#</th><th>name</th><th>price</th><th>tags</th></tr>
<?php foreach ($products as $product): ?>
  <tr>
    <td><?= $product['id'] ?></td>
    <td><a href="/app/products/<?= $product['id'] ?>"><?= $e($product['name']) ?></a></td>
    <td><?= number_format($product['price'], 2) ?></td>
    <td><?= $e(implode(', ', $product['tags'])) ?></td>
  </tr>
<?php endforeach ?>
</table>
<p><?= count($products) ?> products</p>
</body>
</html>
