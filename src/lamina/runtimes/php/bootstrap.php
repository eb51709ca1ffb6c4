<?php declare(strict_types=1);
/*
 * Lamina's PHP runtime: Bref's function and console runtimes on the Runtime API.
 *
 * The platform starts it (see lamina/runtimes/php/__init__.py) as
 *
 *     <php> <this directory>/bootstrap.php function|console
 *
 * with cwd = the task root, PHPRC = <this directory>/php.ini, PHP_INI_SCAN_DIR =
 * ":<task root>/php/conf.d" (the machine's extensions, then the project's own ini files) and
 * Lambda's environment variables (AWS_LAMBDA_RUNTIME_API, _HANDLER, LAMBDA_TASK_ROOT, ...).
 *
 * What users observe is meant to equal Bref's runtimes: the handler forms, the Context, the
 * environment variables set per invocation, the error payloads and log lines, init errors.
 * Where Lamina differs, on purpose: one worker serves many invocations (BREF_LOOP_MAX sets a
 * limit), a fatal PHP error is reported as an error payload before a fresh worker starts, and
 * no curl is needed.
 *
 * It runs in the function's own PHP (7.4 or newer): no dependency, no curl, and classes are
 * loaded only when used. Bref's classes come from the app's vendor/ when it ships them;
 * compat/ has minimal ones with the same names for apps that do not.
 */

require __DIR__ . '/lib/Runtime.php';

spl_autoload_register('Lamina\\Runtime\\autoload');

exit(\Lamina\Runtime\main($argv[1] ?? 'function'));
