"""Hyperparameters of a WALS model and their validation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from walsspark.errors import InputError
from walsspark.solver import MAX_RANK, ObjectiveWeights

DUPLICATE_POLICIES = ("mean", "sum", "last", "error")
CONFIDENCES = ("linear", "log")
SPLIT_METHODS = ("random", "user-fraction", "leave-k-out", "time")
SOLVERS = ("exact", "cg")

# Named settings of the objective (DESIGN.md section 1). A preset sets these fields; any
# of them given explicitly (command line or config file) wins over the preset.
PRESETS: dict[str, dict] = {
    # TensorFlow's WALSMatrixFactorization defaults: explicit target, w0 = 0.1, unit
    # row/column weights and confidences, no regularization (regularization_coeff=None).
    "tf-wals": {
        "implicit_prefs": False,
        "unobserved_weight": 0.1,
        "regularization": 0.0,
        "row_weights": 1.0,
        "col_weights": 1.0,
        "reg_exponent": 0.0,
        "reg_offset": 0.0,
        "unobserved_row_weights": "uniform",
        "unobserved_col_weights": "uniform",
    },
    # Spark MLlib ALS, explicit: unobserved entries ignored (w0 = 0), lambda n_i (ALS-WR).
    "mllib-explicit": {
        "implicit_prefs": False,
        "unobserved_weight": 0.0,
        "row_weights": 1.0,
        "col_weights": 1.0,
        "reg_exponent": 1.0,
        "reg_offset": 0.0,
        "unobserved_row_weights": "uniform",
        "unobserved_col_weights": "uniform",
    },
    # Spark MLlib ALS with implicitPrefs (Hu, Koren and Volinsky): preference 1 for r > 0,
    # weight 1 + alpha r on observed entries and 1 elsewhere, lambda n_i.
    "mllib-implicit": {
        "implicit_prefs": True,
        "confidence": "linear",
        "unobserved_weight": 1.0,
        "row_weights": 1.0,
        "col_weights": 1.0,
        "reg_exponent": 1.0,
        "reg_offset": 0.0,
        "unobserved_row_weights": "uniform",
        "unobserved_col_weights": "uniform",
    },
}
WEIGHT_SCHEMES = ("linear", "power", "col")
# How the unobserved weight of (i, j) varies with the popularity of i and j (DESIGN.md
# section 1, walsspark.solver): ``uniform`` (w0 everywhere) or ``power:E`` (n ** E,
# normalized to mean 1 over the side's ids, as eALS).
UNOBSERVED_SCHEMES = ("uniform", "power:E")


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
        nu in lambda_i = lambda * (n_i + reg_offset) ** nu: 0 as TF WALS, 1 as MLlib (ALS-WR).
    reg_offset : float
        Added to each row's count n_i before the exponent (0 as TF WALS and MLlib); Rendle
        et al.'s (2022) frequency-scaled regularization lambda (n_i + w0 m) ** nu.
    row_weights : float or str
        Row (user) weights R_i: a number (every row), ``"linear:F"`` (F / n_i),
        ``"power:E"`` (n_i ** -E) with n_i the row's number of training ratings, or
        ``"col:NAME"`` (the input column NAME, per user).
    col_weights : float or str
        Column (item) weights C_j, the same forms.
    unobserved_row_weights : str
        How the unobserved weight of a row's entries follows the row's popularity:
        ``"uniform"``, or ``"power:E"``: s_i = n_i ** E / mean(n ** E), so that w0_ij =
        w0 s_i t_j averages w0 (eALS, He et al. 2016; E about 0.5 for items).
    unobserved_col_weights : str
        The same for columns (t_j, from the items' training frequencies).
    implicit_prefs : bool
        Implicit feedback (MLlib's implicitPrefs): target 1 for r > 0, else 0, and entry
        confidence from the rating (see ``confidence``).
    alpha : float
        Confidence scale (MLlib's alpha).
    confidence : str
        With implicit_prefs: ``"linear"`` c = alpha r, ``"log"`` c = alpha log(1 + r / epsilon).
    epsilon : float
        The epsilon of the log confidence.
    weight_col : str or None
        An input column holding each entry's confidence c_ij (replaces the rating-derived one).
    solver : str
        ``"exact"`` (batched LAPACK solve, the reference) or ``"cg"`` (conjugate gradient,
        warm-started from the previous factors).
    cg_steps : int
        Conjugate gradient steps per half-sweep.
    tol : float
        Stop when the relative loss change of a sweep falls below this (0: run every sweep).
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
    split : str
        How the holdout is chosen (:mod:`walsspark.splits`): random, user-fraction,
        leave-k-out or time.
    holdout_k : int
        Ratings held out per user by the leave-k-out split.
    """

    rank: int = 10
    sweeps: int = 10
    unobserved_weight: float = 0.1
    regularization: float = 0.1
    reg_exponent: float = 0.0
    reg_offset: float = 0.0
    row_weights: float | str = 1.0
    col_weights: float | str = 1.0
    unobserved_row_weights: str = "uniform"
    unobserved_col_weights: str = "uniform"
    implicit_prefs: bool = False
    alpha: float = 1.0
    confidence: str = "linear"
    epsilon: float = 1.0
    weight_col: str | None = None
    solver: str = "exact"
    cg_steps: int = 3
    tol: float = 0.0
    seed: int = 0
    num_user_blocks: int | None = None
    num_item_blocks: int | None = None
    checkpoint_interval: int = 10
    duplicates: str = "mean"
    holdout_fraction: float = 0.0
    split: str = "random"
    holdout_k: int = 1

    def validate(self) -> WALSParams:
        """Raise :class:`InputError` naming the first bad value; return self when all are fine."""
        if not _is_int(self.rank) or self.rank < 1:
            raise InputError(f"rank must be an integer >= 1, got {self.rank!r}")
        if self.rank > MAX_RANK:
            # Refused before any work: each row's k x k system alone would be rank^2 * 8 bytes.
            size = self.rank * self.rank * 8 / 2**30
            raise InputError(
                f"rank must be at most {MAX_RANK}, got {self.rank}: each row's normal "
                f"equation is a {self.rank} x {self.rank} matrix ({size:.3g} GiB) in the "
                "solving task's memory"
            )
        if not _is_int(self.sweeps) or self.sweeps < 1:
            raise InputError(f"sweeps must be an integer >= 1, got {self.sweeps!r}")
        if not _is_int(self.seed) or not -(2**63) <= self.seed < 2**63:
            raise InputError(f"seed must be a 64-bit integer, got {self.seed!r}")
        for name in ("unobserved_weight", "regularization", "reg_exponent", "reg_offset"):
            _check_non_negative(name, getattr(self, name))
        for name in ("row_weights", "col_weights"):
            parse_weight_scheme(name, getattr(self, name))
        for name in ("unobserved_row_weights", "unobserved_col_weights"):
            unobserved_exponent(name, getattr(self, name))
        if not isinstance(self.implicit_prefs, bool):
            raise InputError(f"implicit_prefs must be true or false, got {self.implicit_prefs!r}")
        for name in ("alpha", "epsilon"):
            _check_non_negative(name, getattr(self, name))
            if getattr(self, name) == 0:
                raise InputError(f"{name} must be > 0 (confidences must be positive)")
        if self.confidence not in CONFIDENCES:
            raise InputError(
                f"confidence must be one of {', '.join(CONFIDENCES)}, got {self.confidence!r}"
            )
        if self.weight_col is not None and (
            not isinstance(self.weight_col, str) or not self.weight_col
        ):
            raise InputError(f"weight_col must be a column name, got {self.weight_col!r}")
        if self.solver not in SOLVERS:
            raise InputError(f"solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if not _is_int(self.cg_steps) or self.cg_steps < 1:
            raise InputError(f"cg_steps must be an integer >= 1, got {self.cg_steps!r}")
        _check_non_negative("tol", self.tol)
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
        if self.split not in SPLIT_METHODS:
            raise InputError(f"split must be one of {', '.join(SPLIT_METHODS)}, got {self.split!r}")
        if not _is_int(self.holdout_k) or self.holdout_k < 1:
            raise InputError(f"holdout_k must be an integer >= 1, got {self.holdout_k!r}")
        fraction = self.holdout_fraction
        if not isinstance(fraction, int | float) or not 0.0 <= fraction < 1.0:
            raise InputError(f"holdout fraction must be in [0, 1), got {fraction!r}")
        return self

    @property
    def has_holdout(self) -> bool:
        """True when the split holds ratings out (leave-k-out needs no fraction)."""
        return self.holdout_fraction > 0 or self.split == "leave-k-out"

    @property
    def unobserved_exponents(self) -> tuple[float, float]:
        """(e_row, e_col) of the popularity-scaled unobserved weights (0: uniform)."""
        return (
            unobserved_exponent("unobserved_row_weights", self.unobserved_row_weights),
            unobserved_exponent("unobserved_col_weights", self.unobserved_col_weights),
        )

    def user_weights(self, unobserved_norms: tuple[float, float] = (1.0, 1.0)) -> ObjectiveWeights:
        """The objective's weights as seen when solving users (rows).

        Only scalar row and column weights live here; per-id ones are folded into the
        per-entry confidences (:mod:`walsspark.weighting`). ``unobserved_norms`` are the
        users' and items' mean(n ** e) (:func:`walsspark.popularity.unobserved_norms`) when
        the unobserved weights follow popularity.
        """
        row_kind, row_value = parse_weight_scheme("row_weights", self.row_weights)
        col_kind, col_value = parse_weight_scheme("col_weights", self.col_weights)
        return ObjectiveWeights(
            unobserved_weight=float(self.unobserved_weight),
            regularization=float(self.regularization),
            reg_exponent=float(self.reg_exponent),
            reg_offset=float(self.reg_offset),
            row_weight=float(row_value) if row_kind == "scalar" else 1.0,
            col_weight=float(col_value) if col_kind == "scalar" else 1.0,
            row_unobserved_exponent=self.unobserved_exponents[0],
            col_unobserved_exponent=self.unobserved_exponents[1],
            row_unobserved_norm=float(unobserved_norms[0]),
            col_unobserved_norm=float(unobserved_norms[1]),
        )

    @property
    def per_entry_weights(self) -> bool:
        """True when some weight varies by entry (the blocks then carry confidences)."""
        schemes = (
            parse_weight_scheme("row_weights", self.row_weights)[0],
            parse_weight_scheme("col_weights", self.col_weights)[0],
        )
        return self.implicit_prefs or self.weight_col is not None or schemes != ("scalar",) * 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> WALSParams:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def apply_preset(options: dict, given: set[str]) -> dict:
    """``options`` with the preset's settings, except those in ``given`` (set explicitly)."""
    preset = options.get("preset")
    if preset is None:
        return options
    if preset not in PRESETS:
        raise InputError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    return {**options, **{k: v for k, v in PRESETS[preset].items() if k not in given}}


def unobserved_exponent(name: str, value: object) -> float:
    """E of an unobserved-weight scheme: 0 for ``"uniform"``, E for ``"power:E"``.

    Raises
    ------
    InputError
        Naming ``name`` and the accepted forms.
    """
    forms = "uniform or power:E (E a number, e.g. power:0.5)"
    if value == "uniform":
        return 0.0
    if isinstance(value, str) and value.startswith("power:"):
        try:
            exponent = float(value[len("power:") :])
        except ValueError:
            exponent = math.nan
        if math.isfinite(exponent):
            return exponent
    raise InputError(f"{name} must be {forms}, got {value!r}")


def parse_weight_scheme(name: str, value: object) -> tuple[str, float | str]:
    """``("scalar", x)``, ``("linear", f)``, ``("power", e)`` or ``("col", column)``.

    Raises
    ------
    InputError
        Naming ``name`` and the accepted forms.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        _check_non_negative(name, value)
        return "scalar", float(value)
    forms = "a number >= 0, linear:F, power:E or col:NAME"
    if not isinstance(value, str):
        raise InputError(f"{name} must be {forms}, got {value!r}")
    kind, _, argument = value.partition(":")
    try:
        return "scalar", _non_negative_float(name, float(value))
    except ValueError:
        pass
    if kind == "col" and argument:
        return "col", argument
    if kind in ("linear", "power"):
        try:
            number = float(argument)
        except ValueError:
            raise InputError(f"{name} must be {forms}, got {value!r}") from None
        return kind, _non_negative_float(name, number)
    raise InputError(f"{name} must be {forms}, got {value!r}")


def _non_negative_float(name: str, value: float) -> float:
    _check_non_negative(name, value)
    return value


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
