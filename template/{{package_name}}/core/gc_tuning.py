"""Python's cyclic garbage collector, set for a long-running service.

By default the collector runs after every 700 new container objects, and now and then walks
every object the process holds: among them the hundreds of thousands that importing FastAPI,
SQLAlchemy, Pydantic and Celery created, which live as long as the process. Under load those
walks were the tail of the API's latency. Frozen once start-up is done, they are never walked
again, and the young generation is collected less often. What it measured: docs/performance.md,
"The garbage collector".
"""

import gc

# Container objects allocated, net, between two collections of the youngest generation
# (Python's default: 700); then how many collections of one generation trigger the next
# one's (default: 10 and 10). Garbage in reference cycles lives a little longer.
THRESHOLDS = (20_000, 20, 20)


def tune_gc() -> None:
    """Call once start-up is done (the API's lifespan does). The worker's pool processes keep
    Python's defaults: the same change there measured nothing beyond the noise."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
