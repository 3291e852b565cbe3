"""Signals the durable layer sends, for metrics and other observers (Celery's dispatcher)."""

from celery.utils.dispatch import Signal

# sender: the task name; outcome: "published", "deferred" (left to the relay) or "rejected".
enqueue_outcome = Signal(name="enqueue_outcome")
# sender: None; republished, dead: records one relay round published again, or gave up on.
relay_round = Signal(name="relay_round")
# sender: the task name; task_id, reason: the task was dead-lettered (not run again).
task_dead = Signal(name="task_dead")
