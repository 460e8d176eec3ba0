"""An offline imitation of NemoVideo's cloud video API, in the spirit of stripe-mock.

Only tests, the standalone CLI, the demo and `--sandbox` import this package: it pulls in
uvicorn, which the MCP server's ordinary start-up must never pay for.
"""

from .runner import SandboxServer, main
from .state import RecordedRequest, Sandbox, SandboxSession

__all__ = ["RecordedRequest", "Sandbox", "SandboxServer", "SandboxSession", "main"]
