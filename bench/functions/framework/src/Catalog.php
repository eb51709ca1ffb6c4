<?php
declare(strict_types=1);

namespace App;

/** The page's data: fifty products, as a database would return them. */
final class Catalog
{
    /** @return list<array{id: int, name: string, price: float, tags: list<string>}> */
    public static function all(): array
    {
        $products = [];
        for ($i = 1; $i <= 50; $i++) {
            $products[] = [
                'id' => $i,
                'name' => "Product <$i>",
                'price' => $i * 1.25,
                'tags' => $i % 3 === 0 ? ['sale', 'new'] : ['new'],
            ];
        }
        return $products;
    }
}
