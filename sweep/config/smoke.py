"""Settings for checking an install and recovery: the smoke study's generated world, and injected
faults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from trainables.settings import Seed, Text, Whole, settings


@settings
@dataclass
class TinySpec:
    """The smoke study's generated encoder (keyword arguments of trainables.tiny.write_tiny_encoder)."""

    layers: Annotated[Whole, Field(ge=2, le=24)] = 4
    hidden: Annotated[Whole, Field(ge=8, le=1024, multiple_of=2)] = 64
    seed: Seed = 0


@settings
@dataclass
class FaultSpec:
    """An injected fault for recovery tests, applied to the matching replicate-stage trials."""

    fault: Text
    strategy: Text | None = None
    seed: Seed | None = None

    def matches(self, strategy: str, seed: int) -> bool:
        return self.strategy in (None, strategy) and self.seed in (None, seed)


def fault_for(faults: list[FaultSpec], strategy: str, seed: int) -> str | None:
    """The first configured fault that matches a replicate trial, if any."""
    return next((fault.fault for fault in faults if fault.matches(strategy, seed)), None)
