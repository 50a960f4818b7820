"""Everything graphrun says to Redis: connections, the per-process command batcher, key names,
pub/sub, leases, locks, cancel pushes, the task queue and the embedded server; and how Redis's
failures are handled: one mapping into graphrun's exception tree (``errors``) and one retry policy
(``retry``).

One batcher per process, made by its composition root (``api/app.py``, ``worker/process.py``) and
passed to everything that sends through it: a batcher of one's own would split the round trips
the batcher exists to share.

Nothing here imports the store, the event log, the worker or the API: they sit above this room.
"""
