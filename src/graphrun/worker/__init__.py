"""Worker processes: take execution ids from the queue, run the graphs, write the event logs."""
