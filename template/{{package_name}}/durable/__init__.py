"""Durable tasks (stand-in: the durable layer replaces this package; only its signals are here)."""
