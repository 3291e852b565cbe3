"""The failure policy of durable tasks: what is retried, how soon, and for how long.

- Transient errors (the database or broker unavailable for now: refused, dropped or timed-out
  connections) are retried with capped, jittered exponential backoff for at least
  `TASKS__TRANSIENT_RETRY_WINDOW_SECONDS`: an outage of minutes delays tasks, it does not
  fail them.
- Errors a task declares with `retry_on=` (say, a partner API's 503) are retried up to the
  task's `max_retries` (the seed's 3) with the same backoff.
- Anything else fails the task at once: the record is marked `failed` and the alert fires.
"""

import random
from dataclasses import dataclass

from ..config import TaskSettings
from ..core.database import DATABASE_UNAVAILABLE_ERRORS, is_database_unavailable
from .dispatcher import BacklogFullError

# For Celery's autoretry_for (the durable layer's own tasks).
TRANSIENT_ERRORS = (*DATABASE_UNAVAILABLE_ERRORS, BacklogFullError)


def is_transient(exc: BaseException) -> bool:
    """The database unavailable for now, or the broker (a task enqueuing another while too
    many wait for it)."""
    return is_database_unavailable(exc) or isinstance(exc, BacklogFullError)


@dataclass(frozen=True)
class RetryPolicy:
    backoff_initial: float
    backoff_max: float
    jitter: float
    transient_window: float

    @classmethod
    def from_settings(cls, settings: TaskSettings) -> "RetryPolicy":
        return cls(
            backoff_initial=settings.retry_backoff_initial,
            backoff_max=settings.retry_backoff_max,
            jitter=settings.retry_jitter,
            transient_window=settings.transient_retry_window_seconds,
        )

    def backoff(self, retries: int) -> float:
        """Seconds before retry number `retries + 1`, without jitter: doubling, capped."""
        return min(self.backoff_initial * 2.0 ** min(retries, 60), self.backoff_max)

    def countdown(self, retries: int) -> float:
        return self.backoff(retries) + random.uniform(0, self.jitter)  # noqa: S311 - not crypto

    def waited(self, retries: int) -> float:
        """The backoff a task has waited before its run number `retries + 1`."""
        return sum(self.backoff(n) for n in range(retries))

    def countdown_for(
        self,
        exc: BaseException,
        retries: int,
        retry_on: tuple[type[BaseException], ...],
        max_retries: int,
    ) -> float | None:
        """Seconds until the next try of a run that raised `exc`, or None: give up now."""
        if is_transient(exc):
            # Time-based: keep retrying while the next try still starts within the window.
            if self.waited(retries + 1) <= self.transient_window:
                return self.countdown(retries)
            return None
        if retry_on and isinstance(exc, retry_on) and retries < max_retries:
            return self.countdown(retries)
        return None
