"""A cluster address is checked before Ray is asked to join it: Ray's own retry loop takes minutes, and
against a port that answers in another protocol (a web server, say) it waits for ever."""

from __future__ import annotations

import socket

from trainables.errors import ConfigError

CONNECT_TIMEOUT_S = 5.0
# Ray's head (its GCS) is a gRPC server, and gRPC speaks HTTP/2: to a client's connection preface and
# empty SETTINGS frame it answers with a SETTINGS frame of its own (RFC 9113, sections 3.4 and 6.5).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = bytes([0, 0, 0, 0x04, 0, 0, 0, 0, 0])  # length 0, type SETTINGS, no flags, stream 0
SETTINGS_TYPE = 0x04
FRAME_HEADER_BYTES = 9
HOW_TO_START = (
    "Start a head there with `ray start --head --port=<port>` and pass the address it prints "
    "(host:port), or leave out --address to run on this machine."
)


def split_address(address: str) -> tuple[str, int]:
    """The host and port of `host:port` or `ray://host:port` (the host may be empty: this machine)."""
    host, separator, port = address.strip().removeprefix("ray://").rpartition(":")
    if not separator or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"--address {address!r} is not host:port with a port from 1 to 65535 (e.g. 10.0.0.5:6379). "
            f"{HOW_TO_START}"
        )
    return host or "127.0.0.1", int(port)


def check_address(address: str) -> None:
    """Refuse an address where no Ray head answers, within seconds: nothing listens there, or what
    listens does not speak the protocol of Ray's head."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as connection:
            connection.settimeout(CONNECT_TIMEOUT_S)
            connection.sendall(HTTP2_PREFACE + EMPTY_SETTINGS)
            answer = _receive(connection, FRAME_HEADER_BYTES)
    except OSError as error:
        raise ConfigError(
            f"No Ray cluster answers at --address {address} ({error}). {HOW_TO_START}"
        ) from None
    if len(answer) < FRAME_HEADER_BYTES or answer[3] != SETTINGS_TYPE:
        heard = answer[:40].decode("ascii", errors="replace").splitlines()[0] if answer else "nothing"
        raise ConfigError(
            f"--address {address} answers, but not as a Ray cluster's head (it does not speak Ray's "
            f"gRPC protocol; it answered {heard!r}). Pass the port of the head's GCS (6379 unless "
            f"`ray start --head --port` chose another). {HOW_TO_START}"
        )


def _receive(connection: socket.socket, size: int) -> bytes:
    """Up to `size` bytes, fewer when the other side closes or falls silent."""
    data = b""
    while len(data) < size:
        try:
            chunk = connection.recv(size - len(data))
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data
