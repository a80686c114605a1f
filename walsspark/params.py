"""Hyperparameters of a WALS model and their validation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from walsspark.errors import InputError
from walsspark.solver import ObjectiveWeights

DUPLICATE_POLICIES = ("mean", "sum", "last", "error")


@dataclass(frozen=True)
class WALSParams:
    """Everything that defines a training run (Spark MLlib names where the concept matches).

    Attributes
    ----------
    rank : int
        Number of latent factors k.
    sweeps : int
        Passes over the data (MLlib's maxIter); a sweep is a row update then a column update.
    unobserved_weight : float
        w0, the weight of every unobserved entry (TF WALS default 0.1; 0 is MLlib explicit).
    regularization : float
        lambda (MLlib's regParam).
    reg_exponent : float
        nu in lambda_i = lambda * n_i ** nu: 0 as TF WALS, 1 as MLlib (ALS-WR).
    row_weights : float
        Scalar row (user) weight R.
    col_weights : float
        Scalar column (item) weight C.
    seed : int
        Seeds the initial factors (a function of seed and original id) and the holdout split.
    num_user_blocks, num_item_blocks : int or None
        Blocks per side; None chooses from the data size.
    checkpoint_interval : int
        With ``spark.checkpoint.dir`` set, a reliable checkpoint every this many sweeps
        (MLlib's checkpointInterval); without it, only the executors' local checkpoints.
    duplicates : str
        What to do with repeated (user, item) pairs: mean, sum, last (by timestamp) or error.
    holdout_fraction : float
        Fraction of ratings held out for the evaluation after training.
    """

    rank: int = 10
    sweeps: int = 10
    unobserved_weight: float = 0.1
    regularization: float = 0.1
    reg_exponent: float = 0.0
    row_weights: float = 1.0
    col_weights: float = 1.0
    seed: int = 0
    num_user_blocks: int | None = None
    num_item_blocks: int | None = None
    checkpoint_interval: int = 10
    duplicates: str = "mean"
    holdout_fraction: float = 0.0

    def validate(self) -> WALSParams:
        """Raise :class:`InputError` naming the first bad value; return self when all are fine."""
        if not _is_int(self.rank) or self.rank < 1:
            raise InputError(f"rank must be an integer >= 1, got {self.rank!r}")
        if not _is_int(self.sweeps) or self.sweeps < 1:
            raise InputError(f"sweeps must be an integer >= 1, got {self.sweeps!r}")
        if not _is_int(self.seed) or not -(2**63) <= self.seed < 2**63:
            raise InputError(f"seed must be a 64-bit integer, got {self.seed!r}")
        for name in ("unobserved_weight", "regularization", "reg_exponent"):
            _check_non_negative(name, getattr(self, name))
        for name in ("row_weights", "col_weights"):
            _check_non_negative(name, getattr(self, name))
        for name in ("num_user_blocks", "num_item_blocks"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise InputError(f"{name} must be an integer >= 1, got {value!r}")
        if not _is_int(self.checkpoint_interval) or self.checkpoint_interval < 1:
            raise InputError(
                f"checkpoint_interval must be an integer >= 1, got {self.checkpoint_interval!r}"
            )
        if self.duplicates not in DUPLICATE_POLICIES:
            raise InputError(
                f"duplicates policy must be one of {', '.join(DUPLICATE_POLICIES)}, "
                f"got {self.duplicates!r}"
            )
        if self.unobserved_weight == 0 and self.regularization == 0:
            # Then a row with fewer ratings than the rank has a singular normal equation.
            raise InputError(
                "unobserved_weight and regularization cannot both be 0 "
                "(rows with fewer ratings than the rank would have no unique solution)"
            )
        fraction = self.holdout_fraction
        if not isinstance(fraction, int | float) or not 0.0 <= fraction < 1.0:
            raise InputError(f"holdout fraction must be in [0, 1), got {fraction!r}")
        return self

    def user_weights(self) -> ObjectiveWeights:
        """The objective's weights as seen when solving users (rows)."""
        return ObjectiveWeights(
            unobserved_weight=float(self.unobserved_weight),
            regularization=float(self.regularization),
            reg_exponent=float(self.reg_exponent),
            row_weight=float(self.row_weights),
            col_weight=float(self.col_weights),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> WALSParams:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _check_non_negative(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")


def _is_int(value: object) -> bool:
    """An int that is not a bool (TOML ``true`` must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)
