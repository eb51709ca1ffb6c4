"""One module per `lamina` command."""
