"""NemoVideo as MCP tools: a skill whose server talks to NemoVideo's cloud video API."""

__version__ = "0.1.0"
