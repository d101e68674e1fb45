"""`python -m services.explorer`: run the explorer (settings from ALPHALAB_* variables)."""

import asyncio

from services.explorer.handlers import run
from shared.service import run_service
from shared.settings import Settings

if __name__ == "__main__":
    asyncio.run(run_service("explorer", run, Settings.load()))
