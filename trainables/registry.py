"""The registry behind each extension point (layer strategies, tasks, metrics, architectures): entries
under unique names, in the order they were registered, and a lookup whose error lists the names."""

from __future__ import annotations

from typing import Generic, TypeVar

from trainables.errors import ConfigError

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """A name -> entry mapping of one `kind` of entry ("task", "metric", ...). `hint` ends the error
    of an unknown name (e.g. how to declare one instead)."""

    def __init__(self, kind: str, hint: str = "") -> None:
        super().__init__()
        self.kind, self.hint = kind, hint

    def add(self, name: str, entry: T) -> T:
        """Register `entry` as `name`; ValueError when the name is taken. Returns the entry."""
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self[name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry registered as `name`; ConfigError listing the registered names otherwise."""
        if name not in self:
            raise ConfigError(
                f"Unknown {self.kind} {name!r}. Registered {self.kind}s: {', '.join(self)}{self.hint}."
            )
        return self[name]

    def copy(self, without: tuple[str, ...] = ()) -> Registry[T]:
        """A registry of the same kind holding the same entries, less those named in `without`."""
        copied: Registry[T] = Registry(self.kind, self.hint)
        copied.update((name, entry) for name, entry in self.items() if name not in without)
        return copied
