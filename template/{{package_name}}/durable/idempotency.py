"""The Idempotency-Key request header (IETF draft "The Idempotency-Key HTTP Header Field").

A client that retries a POST after a lost answer sends the same key again: the service
returns the first answer and creates nothing. The same key with a different request is a
422. The key is stored on the task record the request enqueued (unique), with a hash of
the request, so concurrent retries are settled by the database.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .models import TaskRecord

MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotencyKeyReusedError(Exception):
    """The key was already used for a different request."""


@dataclass(frozen=True)
class Idempotency:
    key: str
    fingerprint: str

    def claim(self, record: TaskRecord) -> None:
        """Call it right after enqueue(): the session's next statement writes the record."""
        record.idempotency_key = self.key
        record.request_fingerprint = self.fingerprint

    async def earlier(self, session: AsyncSession) -> TaskRecord | None:
        """The record an earlier request with this key enqueued, if any."""
        record = (
            await session.execute(select(TaskRecord).where(TaskRecord.idempotency_key == self.key))
        ).scalar_one_or_none()
        if record is not None and record.request_fingerprint != self.fingerprint:
            raise IdempotencyKeyReusedError(self.key)
        return record

    async def commit(self, session: AsyncSession) -> TaskRecord | None:
        """Commits; if a concurrent request with the same key committed first, rolls back
        and returns that request's record instead."""
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            earlier = await self.earlier(session)
            if earlier is None:
                raise
            return earlier
        return None


def _canonical(body: bytes) -> bytes:
    # The same JSON written with other spacing or key order is the same request.
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        return body


async def idempotency_key(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Retry safely: the same key with the same body returns the first "
            "answer and creates nothing; with another body it is refused (422)."
        ),
    ] = None,
) -> Idempotency | None:
    if idempotency_key is None:
        return None
    if not 0 < len(idempotency_key) <= MAX_KEY_LENGTH or not idempotency_key.isprintable():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
        )
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(_canonical(await request.body()))
    return Idempotency(idempotency_key, digest.hexdigest())


IdempotencyDep = Annotated[Idempotency | None, Depends(idempotency_key)]
