<?php
// Holds its environment busy for a while (bench/run.py starts many environments with it).
return function (array $event): array {
    usleep((int) (($event['seconds'] ?? 0.5) * 1000000));
    return ['statusCode' => 200, 'body' => 'slept'];
};
