"""One retry policy for every provider: what is worth another attempt, how long to wait, and the one
line an `LlmError` says when the call fails for good.

Each adapter turns its SDK's exception into a `Failure` (it knows the SDK's classes); everything
else here is provider-neutral.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

import structlog

from shared.llm.errors import LlmError

__all__ = ["DEFAULT_RETRY", "RETRYABLE_STATUSES", "Failure", "RetryPolicy", "call_with_retries"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# 529 is Anthropic's "overloaded"; OpenAI says the same with a 503.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt as the policy sees it. `status` is None when no HTTP answer came (timeout,
    connection refused); `message` is the server's own words, already scrubbed of the key."""

    status: int | None
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_s: float = 1.0  # the first backoff; then 2x per attempt
    cap_s: float = 30.0
    retry_after_cap_s: float = 60.0  # a server asking for longer is not waited on beyond this

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, not {self.attempts}")

    def wait_s(self, failure: Failure, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        asked = retry_after_s(failure.headers)
        if asked is not None:
            return min(asked, self.retry_after_cap_s)
        backoff = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return backoff * random.uniform(0.75, 1.0)  # jitter, so parallel workers do not retry in step


DEFAULT_RETRY = RetryPolicy()


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait a server asked for: `retry-after-ms`, else `retry-after` in seconds or as an HTTP date."""
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        if "retry-after" in lowered:
            return max(0.0, float(lowered["retry-after"]))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(lowered["retry-after"])
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    describe: Callable[[Exception], Failure | None],
    *,
    label: str,
    policy: RetryPolicy,
) -> tuple[T, int]:
    """Run `attempt` until it succeeds; return its result and how many retries it took.

    `describe` maps an exception to a `Failure`, or None for one that is not a failed call (a bug),
    which then propagates unchanged. Raises `LlmError` after the last attempt or at once when the
    failure will repeat (400, 401, 403, 404)."""
    for number in range(1, policy.attempts + 1):
        try:
            return await attempt(), number - 1
        except Exception as exc:
            failure = describe(exc)
            if failure is None:
                raise
            if not failure.retryable or number == policy.attempts:
                raise _give_up(failure, label, number) from None
            wait = policy.wait_s(failure, number)
            log.warning(
                "llm_retry", model=label, status=failure.status, wait_s=round(wait, 2), attempt=number
            )
            await asyncio.sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _give_up(failure: Failure, label: str, attempts: int) -> LlmError:
    status = f"HTTP {failure.status}" if failure.status is not None else "no answer"
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    message = f"{label}: {status}{tries}: {one_line(failure.message)}"
    return LlmError(message, retryable=failure.retryable, status=failure.status)


def one_line(text: str, limit: int = 300) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
