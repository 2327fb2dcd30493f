"""The error every bad input raises, so callers can tell it from a bug."""


class ConfigError(ValueError):
    """Bad input found before any compute: the message says what is wrong and how to fix it."""
