"""One run at a time per study folder.

A run holds an exclusive lock on the folder's lock file for as long as it runs (the operating system
drops it when the process ends, however it ends), so two runs started with the same name cannot both
claim the folder.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from trainables.errors import ConfigError
from trainables.vocabulary import StudyLayout


@contextmanager
def claimed(layout: StudyLayout) -> Iterator[None]:
    """Hold the study folder's lock while the block runs; refuse if another run holds it."""
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        handle = layout.lock_file.open("a+")
    except OSError as error:
        raise ConfigError(
            f"Cannot write the study folder {layout.root}: {error}. Choose another --storage-path."
        ) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise ConfigError(
                f"{layout.root} is in use by another run of this study ({owner}). Wait for it to end, or "
                f"give this one another --name."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
