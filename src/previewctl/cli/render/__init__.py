"""Text renderings of what the commands return; the CLI prints them."""
