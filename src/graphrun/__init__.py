"""graphrun: run LangGraph workflows in the background and stream their progress to clients."""

__version__ = "0.1.0"
