"""`python -m services.worker`: run one Worker (settings from ALPHALAB_* variables)."""

import asyncio

from services.worker.service import run
from shared.service import run_service
from shared.settings import Settings

if __name__ == "__main__":
    asyncio.run(run_service("worker", run, Settings.load()))
