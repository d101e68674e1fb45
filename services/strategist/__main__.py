"""`python -m services.strategist`: run the builtin Strategist (settings from ALPHALAB_* variables)."""

import asyncio

from services.strategist.service import run
from shared.service import run_service
from shared.settings import Settings

if __name__ == "__main__":
    asyncio.run(run_service("strategist", run, Settings.load()))
