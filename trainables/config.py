"""One trial's settings: plain values that Ray can ship, checked before any compute."""

import dataclasses
from dataclasses import dataclass, field

from trainables.data import DataConfig
from trainables.errors import ConfigError
from trainables.losses import LossWeights


@dataclass
class TrialConfig:
    teacher: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    strategy: str = "bottom"
    student_layers: int = 6
    temperature: float = 2.0
    alpha_ce: float = 0.5
    alpha_kd: float = 0.5
    alpha_cos: float = 0.0
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    epochs: int = 5
    batch_size: int = 32
    eval_batch_size: int = 128
    # Batch rows of similar length together: less padding, same determinism per seed.
    group_by_length: bool = True
    seed: int = 0
    device: str = "auto"
    trust_remote_code: bool = False
    # Reuse the teacher's training-set outputs across epochs and trials (needs a local teacher folder).
    teacher_cache: bool = True
    # Caches larger than this are memory-mapped from disk instead of read into RAM.
    cache_memory_mb: int = 2048
    # Fault injection for testing recovery: "crash:<step>" raises once at that global step on a
    # fresh start (not after a restore); "nan:<step>" makes the loss NaN at that step.
    fault: str | None = None

    @classmethod
    def from_dict(cls, values: dict) -> "TrialConfig":
        data = values.get("data", {})
        data = data if isinstance(data, DataConfig) else _build(DataConfig, data, "data")
        return _build(cls, {**values, "data": data}, "trial")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(ce=self.alpha_ce, kd=self.alpha_kd, cos=self.alpha_cos)

    def validate(self) -> None:
        """Raise ConfigError on any bad setting. The strategy is checked against the teacher's
        depth by `select_layers`, once the teacher's config is known."""
        if not self.teacher:
            raise ConfigError("No teacher given: set `teacher` to a fine-tuned model folder or hub id.")
        self.data.validate()
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}.")
        weights = (self.alpha_ce, self.alpha_kd, self.alpha_cos)
        if min(weights) < 0 or sum(weights) == 0:
            raise ConfigError(
                f"Loss weights alpha_ce/alpha_kd/alpha_cos must be >= 0 and not all zero, got {weights}."
            )
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}.")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("epochs, batch_size and eval_batch_size must each be at least 1.")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
        self.fault_step("crash")

    def fault_step(self, kind: str) -> int | None:
        """The global step at which to inject fault `kind` ("crash" or "nan"), if configured."""
        if not self.fault:
            return None
        name, _, step = self.fault.partition(":")
        if name not in ("crash", "nan") or not step.isdigit():
            raise ConfigError(f"fault must be 'crash:<step>' or 'nan:<step>', got {self.fault!r}.")
        return int(step) if name == kind else None


def _build(cls: type, values: dict, what: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"Unknown {what} settings {unknown}; known ones: {sorted(known)}.")
    return cls(**values)
