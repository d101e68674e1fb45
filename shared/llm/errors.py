"""Why a model call failed for good: the one exception the port raises (after its retries)."""

from __future__ import annotations

__all__ = ["LlmError"]


class LlmError(Exception):
    """A model call that did not give a reply. `retryable` says whether a later call may succeed
    (overload, rate limit, timeout) as opposed to a refusal that will repeat (bad key, unknown model)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
