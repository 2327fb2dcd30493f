"""A cluster address is checked before Ray is asked to join it: Ray's own retry loop takes minutes."""

from __future__ import annotations

import socket

from trainables.errors import ConfigError

CONNECT_TIMEOUT_S = 5.0


def check_address(address: str) -> None:
    """Refuse an address where no Ray head listens, naming it and how to start one."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"No Ray cluster answers at --address {address} ({error}). Start a head there with "
            f"`ray start --head --port=<port>`, or leave out --address to run on this machine."
        ) from None
