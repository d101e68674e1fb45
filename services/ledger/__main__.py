"""`python -m services.ledger`: run the ledger writer (settings from ALPHALAB_* variables)."""

import asyncio

from services.ledger.writer import run
from shared.service import run_service
from shared.settings import Settings

if __name__ == "__main__":
    asyncio.run(run_service("ledger", run, Settings.load()))
