"""Orchestration over the clients: no Typer, output only through a Reporter."""
