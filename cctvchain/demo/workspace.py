"""The demo's working directory: emptied before every run so that the run is repeatable.

A directory the demo made carries a marker file; only such a directory is deleted
without ``--fresh``, so pointing ``--dir`` at the wrong place cannot cost anyone data.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from cctvchain.demo import DemoError

MARKER = ".cctvchain-demo"


def prepare(directory: Path, *, fresh: bool, protect: Sequence[Path] = ()) -> None:
    """Leave ``directory`` empty but for the marker; refuse to delete what is not ours."""
    if directory.exists() and not directory.is_dir():
        raise DemoError(f"{directory} is not a directory")
    if directory.is_dir() and any(directory.iterdir()):
        if not fresh and not (directory / MARKER).is_file():
            raise DemoError(
                f"{directory} is not empty and holds no earlier demo; choose another --dir, "
                "or pass --fresh to delete it"
            )
        _check_deletable(directory, protect)
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text(
        "Made by `cctvchain demo`; the next demo run deletes this directory.\n"
    )


def _check_deletable(directory: Path, protect: Sequence[Path]) -> None:
    target = directory.resolve()
    for path in (Path("/"), Path.home(), *protect):
        kept = path.resolve()
        if kept == target or target in kept.parents:
            raise DemoError(f"refusing to delete {directory}: it is or contains {path}")
