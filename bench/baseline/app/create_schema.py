"""Glue: create the `orders` table (the seed has no migrations). `python -m app.create_schema`."""

from app.core.database import sync_engine
from app.models import Base


def main() -> None:
    Base.metadata.drop_all(sync_engine)
    Base.metadata.create_all(sync_engine)


if __name__ == "__main__":
    main()
