"""Built-in domain adapters, one folder each (see `shared.domain`); data files ship inside the package."""
