"""Where the shared test corpora live: beside the checkout, or where INBOXHUB_CORPORA points."""

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    os.environ.get("INBOXHUB_CORPORA", ""),
    _REPO.parent / "shared" / "corpora",
    "/work/shared/corpora",
]

CORPORA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), _REPO.parent / "shared" / "corpora")
