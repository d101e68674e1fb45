"""`python -m services.supervisor`: run the Supervisor (settings from ALPHALAB_* variables)."""

import asyncio

from services.supervisor.service import run
from shared.service import run_service
from shared.settings import Settings

if __name__ == "__main__":
    asyncio.run(run_service("supervisor", run, Settings.load()))
