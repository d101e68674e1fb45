"""The ledger writer: the one process that appends every event on the bus to the DuckDB log."""
