"""Rebuilds server/ui/ext-apps-app.js byte for byte: the single-file `App` bundle that the pinned
`@modelcontextprotocol/ext-apps` publishes (dist/src/app-with-deps.js), fetched with `npm pack`.

    python tests/apps/refresh_bundle.py          # compare (exit 1 when it differs)
    python tests/apps/refresh_bundle.py --write  # replace it (then update the pin in server/views.py)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from server.views import EXT_APPS, UI  # noqa: E402

MEMBER = "package/dist/src/app-with-deps.js"


def published() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        packed = subprocess.run(["npm", "pack", EXT_APPS, "--pack-destination", folder], capture_output=True,
                                text=True, check=True).stdout.strip().splitlines()[-1]
        with tarfile.open(Path(folder) / packed) as archive:
            member = archive.extractfile(MEMBER)
            assert member is not None, f"{EXT_APPS} has no {MEMBER}"
            return member.read()


def main() -> int:
    fresh, committed = published(), (UI / "ext-apps-app.js").read_bytes()
    print(f"{EXT_APPS} {MEMBER}: sha256 {hashlib.sha256(fresh).hexdigest()}")
    if "--write" in sys.argv:
        (UI / "ext-apps-app.js").write_bytes(fresh)
        return 0
    print("the committed bundle is the same, byte for byte" if fresh == committed else "the committed bundle DIFFERS")
    return 0 if fresh == committed else 1


if __name__ == "__main__":
    raise SystemExit(main())
