"""Lamina's PHP-FPM runtime files: php-fpm.conf (a template) and php.ini, after Bref's layer.

Only read by Lamina, never imported inside an environment.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

PHP_INI = Path(__file__).with_name("php.ini")
CONFIG_TEMPLATE = Path(__file__).with_name("php-fpm.conf")
SOCKET_NAME = "php-fpm.sock"


def render_config(listen: str | Path) -> str:
    """php-fpm.conf for one environment, listening on the Unix socket `listen`."""
    return Template(CONFIG_TEMPLATE.read_text()).substitute(listen=str(listen))
