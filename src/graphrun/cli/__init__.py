"""The ``graphrun`` command line (API.md §4). Only this layer configures logging."""
