"""Where previews run: one package per platform; ops reach it through backends.base."""
