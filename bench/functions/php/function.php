<?php
// A PHP function on Bref's function runtime: the file returns the handler.
return function (array $event): array {
    return ['statusCode' => 200, 'body' => 'ok'];
};
