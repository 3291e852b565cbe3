"""fastcelery: generate FastAPI + Celery services from a Copier template."""

__version__ = "0.2.1"
