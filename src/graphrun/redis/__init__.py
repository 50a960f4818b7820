"""Everything graphrun says to Redis: connections, the per-process command batcher, key names,
pub/sub, leases, locks, cancel pushes, the task queue and the embedded server.

Nothing here imports the store, the event log, the worker or the API: they sit above this room.
"""
