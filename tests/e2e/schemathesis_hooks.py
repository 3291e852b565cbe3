"""Schemathesis hooks of test_bad_input (loaded through SCHEMATHESIS_HOOKS).

A generated Idempotency-Key is schema-valid but arbitrary: two cases that draw the same key
("0") with different bodies are a key reused for another request, which the API refuses
with 422 by design, and schemathesis would report as a valid request rejected. Each request
that carries a key gets a key of its own (malformed keys: the generated tests, test_orders.py).
"""

import uuid
from typing import Any

import schemathesis

HEADER = "idempotency-key"


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    for name in list(case.headers or {}):
        if name.lower() == HEADER:
            case.headers[name] = f"schemathesis-{uuid.uuid4()}"
