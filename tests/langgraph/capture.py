"""Record what ``langgraph dev`` streams for tests/langgraph/refgraphs.py into
tests/langgraph/captures/, the reference test_translate.py compares graphrun's translator with.

Run it again after upgrading the reference server (`make capture-reference`; it uses the dev server
that `make test-reference` installs into bench/.peer-venv), and review the diff: a changed capture is
a change in LangGraph's protocol.

    python tests/langgraph/capture.py <path to the langgraph CLI>
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
CAPTURES = HERE / "captures"
ALL_MODES = ["values", "updates", "checkpoints", "debug", "tasks"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream(client: httpx.Client, thread_id: str, body: dict[str, object]) -> str:
    """The run's SSE body as sent, blank-line separated blocks, heartbeats dropped."""
    with client.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
        response.raise_for_status()
        text = response.read().decode()
    blocks = [b for b in text.replace("\r\n", "\n").strip().split("\n\n") if not b.startswith(":")]
    return "\n\n".join(blocks) + "\n"


def capture(client: httpx.Client) -> dict[str, str]:
    def thread() -> str:
        return str(client.post("/threads", json={}).json()["thread_id"])

    modes = {"assistant_id": "simple", "input": {"n": 0}, "stream_mode": ALL_MODES}
    asked = thread()
    first = {"assistant_id": "ask", "input": {"n": 0}, "stream_mode": ["values", "updates"]}
    resume = {"assistant_id": "ask", "command": {"resume": "yes"}, "stream_mode": ["values", "updates"]}
    return {
        "stream_modes.txt": stream(client, thread(), modes),
        "interrupt_stream.txt": stream(client, asked, first),
        "resume_stream.txt": stream(client, asked, resume),
    }


def main(cli: str) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copy(HERE / "refgraphs.py", project / "refgraphs.py")
        graphs = {"simple": "./refgraphs.py:simple", "ask": "./refgraphs.py:asking"}
        (project / "langgraph.json").write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
        args = [cli, "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
        env = {"PATH": "/usr/bin:/bin", "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
        server = subprocess.Popen(args, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if client.get("/ok").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("langgraph dev did not start")
                    time.sleep(0.5)
                version = client.get("/info").json().get("version", "?")
                CAPTURES.mkdir(exist_ok=True)
                for name, text in capture(client).items():
                    (CAPTURES / name).write_text(text)
                    print(f"captures/{name}: {text.count(chr(10) + chr(10)) + 1} events (langgraph-api {version})")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main(str(Path(sys.argv[1]).resolve()) if len(sys.argv) > 1 else "langgraph")
