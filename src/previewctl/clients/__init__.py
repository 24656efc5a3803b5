"""One client class per remote API, sharing one retry policy (:mod:`.http`)."""
