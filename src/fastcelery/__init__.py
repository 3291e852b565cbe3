"""fastcelery: generate FastAPI + Celery services from a Copier template."""

__version__ = "0.1.0"
