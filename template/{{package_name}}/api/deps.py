"""FastAPI dependencies."""

import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, status
from sqlalchemy.ext.asyncio import AsyncSession

from ..config import get_settings
from ..core.database import get_async_session

SessionDep = Annotated[AsyncSession, Depends(get_async_session)]


async def require_internal_token(
    x_internal_token: Annotated[str | None, Header()] = None,
) -> None:
    """Internal routes (task detail, redrive) need X-Internal-Token = API__INTERNAL_TOKEN."""
    expected = get_settings().api.internal_token
    if expected is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="internal routes are disabled (API__INTERNAL_TOKEN unset)",
        )
    if x_internal_token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="X-Internal-Token header required")
    if not secrets.compare_digest(x_internal_token.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid internal token")


InternalOnly = Depends(require_internal_token)
