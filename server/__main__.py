"""`python -m nemovideo_mcp`, and the entry point an MCPB host of type "uv" runs as a script.

The absolute import keeps one module tree whichever way this file is started: as
`python -m nemovideo_mcp`, as a file (`uv run server/__main__.py`, where this folder's
generic module names must not land on sys.path first), or as `python -m server` from a
checkout (which then runs the installed `nemovideo_mcp`, never a second copy).
"""

import sys

if not __package__:
    del sys.path[0]  # this folder: its modules are only importable as nemovideo_mcp.*

from nemovideo_mcp.cli import main  # noqa: E402

sys.exit(main())
