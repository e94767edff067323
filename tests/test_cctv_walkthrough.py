"""The README's contract walkthrough runs as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_walkthrough_runs_every_step(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "cctv_walkthrough.py"), "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("-> VALID") == 8  # 3 participants, request, approve, grant, 2 anchors
    assert "Approve by operator refused: 403 ACCESS_DENIED" in out
    assert "camera 5859 is not on the granted list" in out
    assert "role PO holds access to 5859" in out
    assert "SEQUENCE_REPLAY" in out
    assert "segment 1: root" in out and "block 8 tx 0" in out
    assert out.rstrip().endswith("True")  # every peer has the same head hash
    assert (tmp_path / "peer0.CityCCTV").is_dir()  # real LevelDB ledgers were written
