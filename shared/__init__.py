"""The library every AlphaLab service stands on: events, bus, ledger, projections, settings, logging."""
