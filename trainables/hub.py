"""Fail in seconds, with a useful message, when the Hugging Face hub cannot be reached.

Without this check `datasets` and `transformers` retry for about half a minute per file before
raising a generic connection error.
"""

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from trainables.errors import ConfigError

PROBE_TIMEOUT_S = 3.0


def is_local(name: str) -> bool:
    """A name is local when it exists on disk or is written as a path; `org/model` is a hub id."""
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~"))


def require_hub(what: str, how_to_go_local: str) -> None:
    """Raise ConfigError unless the hub answers, or offline mode asks the libraries to use the cache."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or endpoint
    try:
        socket.create_connection((host, 443), timeout=PROBE_TIMEOUT_S).close()
    except OSError as error:
        raise ConfigError(
            f"Cannot load {what}: the Hugging Face hub at {host} is unreachable ({error}). "
            f"{how_to_go_local} If it is already in your local Hugging Face cache, set "
            f"HF_HUB_OFFLINE=1 to use the cached copy."
        ) from None


def require_model(name: str) -> None:
    """Raise ConfigError unless the model `name` can be read: a local folder (not a file, not a missing
    path), or a hub id while the hub answers."""
    if not is_local(name):
        require_hub(f"model {name!r}", "Pass a local model folder (save_pretrained layout) instead.")
    elif not Path(name).expanduser().is_dir():
        kind = "is a file, not a model folder" if Path(name).expanduser().exists() else "does not exist"
        raise ConfigError(f"Model folder {name} {kind}.")
