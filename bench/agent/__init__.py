"""The agent-load benchmark (issue #18): a tool-calling agent served by graphrun and its peers, driven
by langgraph_sdk conversations, with a fake OpenAI-compatible LLM that stamps every token.

    make bench-agent        (or: .venv/bin/python -m bench.agent [--quick] [--only serve ...])

Modules: graph.py + langgraph.json (the agent, as a user writes it), fake_llm.py (the fake model's
server), conversation.py + load.py (the client process), systems.py (the servers under test),
meter.py (CPU and memory from outside), report.py (figures and targets), __main__.py (the run).
"""
