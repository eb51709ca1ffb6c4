<?php
// Holds its environment busy for a while (bench/run.py starts many environments with it).
usleep((int) (($_GET['seconds'] ?? 0.5) * 1000000));
echo "slept";
