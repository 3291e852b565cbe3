"""Glue the seed leaves out: the settings its code reads (`settings.redis.host/port`)."""

from functools import lru_cache

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict


class RedisSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 6379


class DatabaseSettings(BaseModel):
    url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_baseline"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__")

    redis: RedisSettings = RedisSettings()
    database: DatabaseSettings = DatabaseSettings()


@lru_cache
def get_settings() -> Settings:
    return Settings()
