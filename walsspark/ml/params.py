"""The Params of :class:`~walsspark.ml.WALS` and :class:`~walsspark.ml.WALSModel`.

Names and defaults are Spark MLlib ALS's wherever the concept is the same (``rank``,
``maxIter``, ``regParam``, ``alpha``, ``implicitPrefs``, the column names,
``coldStartStrategy``...); the WALS objective adds ``unobservedWeight``, ``regExponent``,
``regOffset``, ``rowWeights``, ``colWeights``, ``unobservedRowWeights``, ``unobservedColWeights``,
``confidence``, ``epsilon``, ``weightCol``, ``solver``,
``cgSteps``, ``tol``, ``duplicates`` and ``preset``. :func:`wals_params` turns them into the
:class:`walsspark.params.WALSParams` that the command line builds from its options, so both
validate alike and train alike.

By default (``preset="mllib"``) the objective is MLlib's: unobserved entries ignored and
lambda scaled by each row's count (explicit), or Hu-Koren-Volinsky with ``alpha``
(``implicitPrefs``). A ``preset`` sets ``unobservedWeight`` and ``regExponent`` unless they
are set explicitly; ``"tf-wals"`` gives the TensorFlow estimator's objective.
"""

from __future__ import annotations

import re
from typing import Any

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasCheckpointInterval,
    HasMaxIter,
    HasPredictionCol,
    HasRegParam,
    HasSeed,
    HasTol,
    HasWeightCol,
)

from walsspark.errors import InputError
from walsspark.ml.names import TO_WALS_PARAMS
from walsspark.params import PRESETS, WALSParams

# MLlib-style preset names: "mllib" follows implicitPrefs.
ML_PRESETS = ("mllib", *PRESETS)
COLD_START_STRATEGIES = ("nan", "drop")


def _to_optional_int(value: Any) -> int | None:
    return None if value is None else TypeConverters.toInt(value)


def _to_weight_scheme(value: Any) -> float | str:
    """A number, or one of the string forms of :func:`walsspark.params.parse_weight_scheme`."""
    if isinstance(value, str):
        return value
    return TypeConverters.toFloat(value)


def _to_optional_string(value: Any) -> str | None:
    return None if value is None else TypeConverters.toString(value)


def _param(name: str, doc: str, converter) -> Param:
    return Param(Params._dummy(), name, doc, typeConverter=converter)


class WALSModelParams(HasPredictionCol, HasWeightCol):
    """Params of :class:`~walsspark.ml.WALSModel`: the columns it reads and writes and how
    it predicts and recommends (the training ones are the estimator's)."""

    userCol: Param[str] = _param(
        "userCol", "column name for user ids (integers or strings)", TypeConverters.toString
    )
    itemCol: Param[str] = _param(
        "itemCol", "column name for item ids (integers or strings)", TypeConverters.toString
    )
    ratingCol: Param[str] = _param("ratingCol", "column name for ratings", TypeConverters.toString)
    coldStartStrategy: Param[str] = _param(
        "coldStartStrategy",
        "strategy for users or items the model has not seen, at prediction time: 'nan' "
        "(prediction NaN) or 'drop' (row dropped)",
        TypeConverters.toString,
    )
    excludeSeen: Param[bool] = _param(
        "excludeSeen",
        "whether the recommend methods leave out the items (users) each user (item) was trained on",
        TypeConverters.toBoolean,
    )
    rankingK: Param[int] = _param(
        "rankingK",
        "0: transform adds a rating prediction per row; K > 0: transform returns one row per "
        "user with predictionCol, the user's top K items (training items excluded), and "
        "'label', the user's items in the data, both array<double>, as RankingEvaluator reads",
        TypeConverters.toInt,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(
            userCol="user",
            itemCol="item",
            ratingCol="rating",
            predictionCol="prediction",
            coldStartStrategy="nan",
            excludeSeen=False,
            rankingK=0,
        )

    def getUserCol(self) -> str:
        """The user id column."""
        return self.getOrDefault(self.userCol)

    def getItemCol(self) -> str:
        """The item id column."""
        return self.getOrDefault(self.itemCol)

    def getRatingCol(self) -> str:
        """The rating column."""
        return self.getOrDefault(self.ratingCol)

    def getColdStartStrategy(self) -> str:
        """'nan' or 'drop' (matched case-insensitively, as MLlib)."""
        return self.getOrDefault(self.coldStartStrategy).lower()

    def getExcludeSeen(self) -> bool:
        """Whether recommendations leave out the training pairs."""
        return self.getOrDefault(self.excludeSeen)

    def getRankingK(self) -> int:
        """K of transform's per-user ranking rows (0: per-row predictions)."""
        return self.getOrDefault(self.rankingK)

    def check_model_params(self) -> None:
        """Raise :class:`InputError` for a bad cold-start strategy or ranking K."""
        strategy = self.getColdStartStrategy()
        if strategy not in COLD_START_STRATEGIES:
            raise InputError(
                f"coldStartStrategy must be one of {', '.join(COLD_START_STRATEGIES)}, "
                f"got {strategy!r}"
            )
        k = self.getRankingK()
        if k < 0:
            raise InputError(f"rankingK must be an integer >= 0, got {k}")


class WALSParamsMixin(
    WALSModelParams, HasMaxIter, HasRegParam, HasCheckpointInterval, HasSeed, HasTol
):
    """Params of :class:`~walsspark.ml.WALS`: the model's plus the training ones."""

    rank: Param[int] = _param("rank", "rank of the factorization", TypeConverters.toInt)
    numUserBlocks: Param[int] = _param(
        "numUserBlocks",
        "number of user blocks; None: one per task slot of the cluster, more for data "
        "beyond 2M ratings per block",
        _to_optional_int,
    )
    numItemBlocks: Param[int] = _param(
        "numItemBlocks",
        "number of item blocks; None: one per task slot of the cluster, more for data beyond "
        "2M ratings per block",
        _to_optional_int,
    )
    implicitPrefs: Param[bool] = _param(
        "implicitPrefs",
        "whether to use implicit preference: target 1 for rating > 0, confidence from the "
        "rating (see confidence, alpha)",
        TypeConverters.toBoolean,
    )
    alpha: Param[float] = _param(
        "alpha", "alpha for implicit preference (confidence scale)", TypeConverters.toFloat
    )
    nonnegative: Param[bool] = _param(
        "nonnegative",
        "whether to use a nonnegative constraint (MLlib's; not supported, must be False)",
        TypeConverters.toBoolean,
    )
    unobservedWeight: Param[float] = _param(
        "unobservedWeight",
        "w0, the weight of every unobserved (user, item) entry; unset: from preset",
        TypeConverters.toFloat,
    )
    regExponent: Param[float] = _param(
        "regExponent",
        "nu in lambda_i = regParam * (n_i + regOffset) ** nu (n_i: ratings of row i); 0 as "
        "TF WALS, 1 as MLlib; unset: from preset",
        TypeConverters.toFloat,
    )
    regOffset: Param[float] = _param(
        "regOffset",
        "added to each row's count n_i in lambda_i (Rendle et al. 2022: lambda (n_i + w0 m) "
        "** nu); 0 as TF WALS and MLlib; unset: from preset",
        TypeConverters.toFloat,
    )
    rowWeights: Param[float | str] = _param(
        "rowWeights",
        "user (row) weights: a number, 'linear:F' (F / n_i), 'power:E' (n_i ** -E) or "
        "'col:NAME' (a column of the data, per user)",
        _to_weight_scheme,
    )
    colWeights: Param[float | str] = _param(
        "colWeights", "item (column) weights, the forms of rowWeights", _to_weight_scheme
    )
    unobservedRowWeights: Param[str] = _param(
        "unobservedRowWeights",
        "how a user's unobserved weight follows their number of ratings n: 'uniform' or "
        "'power:E' (n ** E, normalized so that the weights average unobservedWeight)",
        TypeConverters.toString,
    )
    unobservedColWeights: Param[str] = _param(
        "unobservedColWeights",
        "the same for items ('power:0.5' weighs popular unrated items more, as eALS)",
        TypeConverters.toString,
    )
    confidence: Param[str] = _param(
        "confidence",
        "implicit confidence: 'linear' (alpha * r) or 'log' (alpha * log(1 + r / epsilon))",
        TypeConverters.toString,
    )
    epsilon: Param[float] = _param(
        "epsilon", "epsilon of the log confidence", TypeConverters.toFloat
    )
    solver: Param[str] = _param(
        "solver",
        "'exact' (batched Cholesky solves) or 'cg' (conjugate gradient from the last factors)",
        TypeConverters.toString,
    )
    cgSteps: Param[int] = _param(
        "cgSteps", "conjugate gradient steps per half-sweep (solver='cg')", TypeConverters.toInt
    )
    duplicates: Param[str] = _param(
        "duplicates",
        "repeated (user, item) pairs: 'mean', 'sum' or 'error'",
        TypeConverters.toString,
    )
    preset: Param[str] = _param(
        "preset",
        "objective preset: 'mllib' (MLlib's, explicit or implicit as implicitPrefs), "
        "'mllib-explicit', 'mllib-implicit' or 'tf-wals'; unobservedWeight and regExponent "
        "set explicitly win",
        TypeConverters.toString,
    )

    # Accepted so that code written for MLlib's ALS runs; walsspark has no use for them.
    blockSize: Param[int] = _param(
        "blockSize",
        "MLlib's block size for stacking vectors in recommendations; accepted for "
        "compatibility, no effect (walsspark scores whole blocks with one matrix product)",
        TypeConverters.toInt,
    )
    intermediateStorageLevel: Param[str] = _param(
        "intermediateStorageLevel",
        "MLlib's storage level of intermediate RDDs; accepted for compatibility, no effect "
        "(half-sweeps are local checkpoints, or reliable ones every checkpointInterval)",
        TypeConverters.toString,
    )
    finalStorageLevel: Param[str] = _param(
        "finalStorageLevel",
        "MLlib's storage level of the final factors; accepted for compatibility, no effect "
        "(the model keeps its factor blocks as local checkpoints)",
        TypeConverters.toString,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(
            blockSize=4096,
            intermediateStorageLevel="MEMORY_AND_DISK",
            finalStorageLevel="MEMORY_AND_DISK",
            rank=10,
            maxIter=10,
            regParam=0.1,
            numUserBlocks=None,
            numItemBlocks=None,
            implicitPrefs=False,
            alpha=1.0,
            nonnegative=False,
            checkpointInterval=10,
            seed=0,
            tol=0.0,
            rowWeights=1.0,
            colWeights=1.0,
            unobservedRowWeights="uniform",
            unobservedColWeights="uniform",
            confidence="linear",
            epsilon=1.0,
            solver="exact",
            cgSteps=3,
            duplicates="mean",
            preset="mllib",
        )

    def getRank(self) -> int:
        """The rank of the factorization."""
        return self.getOrDefault(self.rank)

    def getImplicitPrefs(self) -> bool:
        """Whether the ratings are implicit feedback."""
        return self.getOrDefault(self.implicitPrefs)

    def getAlpha(self) -> float:
        """The implicit confidence scale."""
        return self.getOrDefault(self.alpha)

    def getNumUserBlocks(self) -> int | None:
        """User blocks (None: chosen from the cluster and the data)."""
        return self.getOrDefault(self.numUserBlocks)

    def getNumItemBlocks(self) -> int | None:
        """Item blocks (None: chosen from the cluster and the data)."""
        return self.getOrDefault(self.numItemBlocks)

    def getPreset(self) -> str:
        """The objective preset."""
        return self.getOrDefault(self.preset)

    def setNumBlocks(self, value: int | None):
        """Sets both numUserBlocks and numItemBlocks (as MLlib's ALS)."""
        return self._set(numUserBlocks=value, numItemBlocks=value)

    def getUnobservedWeight(self) -> float:
        """w0 as training uses it (set, or from the preset)."""
        return wals_params(self).unobserved_weight

    def getRegExponent(self) -> float:
        """nu as training uses it (set, or from the preset)."""
        return wals_params(self).reg_exponent


def wals_params(params: Params) -> WALSParams:
    """The :class:`WALSParams` a set of WALS Params trains with, validated.

    The preset fills ``unobservedWeight``, ``regExponent`` (and, for ``mllib-*``,
    ``implicitPrefs`` unless set) where they are not set explicitly, as the command line's
    ``--preset`` does for options not given.

    ``checkpointInterval=-1`` (MLlib's "never") trains with no reliable checkpoint.

    Raises
    ------
    InputError
        The first bad value, in the command line's words with the Param's name.
    """
    preset = params.getOrDefault("preset")
    if preset not in ML_PRESETS:
        raise InputError(f"preset must be one of {', '.join(ML_PRESETS)}, got {preset!r}")
    values = {
        field: params.getOrDefault(name)
        for name, field in TO_WALS_PARAMS.items()
        if params.hasDefault(name) or params.isSet(name)
    }
    given = {TO_WALS_PARAMS[name] for name in TO_WALS_PARAMS if params.isSet(name)}
    if preset == "mllib":
        preset = "mllib-implicit" if values["implicit_prefs"] else "mllib-explicit"
    for field, value in PRESETS[preset].items():
        if field not in given:
            values[field] = value
    if params.getOrDefault("nonnegative"):
        raise InputError("nonnegative=True is not supported by WALS (least squares only)")
    if values.get("duplicates") == "last":
        raise InputError("duplicates='last' needs timestamps; use 'mean', 'sum' or 'error'")
    if values.get("checkpoint_interval") == -1:
        values["checkpoint_interval"] = NEVER
    try:
        return WALSParams(**values).validate()
    except InputError as error:
        raise InputError(_param_names(str(error))) from None


# A checkpoint interval no run reaches: checkpointInterval=-1.
NEVER = 2**31 - 1
_FIELD_WORDS = {field: name for name, field in TO_WALS_PARAMS.items()}


def _param_names(message: str) -> str:
    """A :class:`WALSParams` validation message with the Params' names for its fields."""
    return re.sub(
        r"\b(" + "|".join(sorted(_FIELD_WORDS, key=len, reverse=True)) + r")\b",
        lambda match: _FIELD_WORDS[match.group(1)],
        message,
    )


def add_setters(cls: type) -> type:
    """Give ``cls`` MLlib's setter for each of its Params (``setRank``, ``setMaxIter``...)
    that it does not define itself."""
    for name in dir(cls):
        param = getattr(cls, name, None)
        if not isinstance(param, Param):
            continue
        setter = "set" + name[0].upper() + name[1:]
        if setter in vars(cls):
            continue

        def set_value(self, value, _name=name):
            return self._set(**{_name: value})

        set_value.__name__ = setter
        set_value.__doc__ = f"Sets the value of :py:attr:`{name}`."
        setattr(cls, setter, set_value)
    return cls
