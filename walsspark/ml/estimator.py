"""WALS: weighted ALS as a pyspark.ml Estimator, a drop-in for MLlib's ``ALS``.

``WALS(...).fit(df)`` renames the DataFrame's columns onto walsspark's internal layout and
calls :func:`walsspark.training.train_model`, the function ``walsspark train`` calls: the
same validation, merging of repeated pairs, weighting and block-partitioned sweeps. The
fitted :class:`~walsspark.ml.WALSModel` keeps its factor blocks on the
executors as local checkpoints; what training cached besides (rating blocks, the merged
ratings) is released once they are computed.
"""

from __future__ import annotations

import uuid
from typing import Any

from pyspark.ml import Estimator
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from walsspark.ml.model import WALSModel
from walsspark.ml.params import WALSParamsMixin, add_setters, wals_params


class WALS(Estimator[WALSModel], WALSParamsMixin, MLWritable, MLReadable["WALS"]):
    """Weighted alternating least squares (WALS) matrix factorization on Spark.

    Minimises, over user factors u_i and item factors v_j (DESIGN.md section 1),

        sum_observed W_ij (a_ij - u_i.v_j)^2 + w0 sum_all (u_i.v_j)^2
        + sum_i lambda_i |u_i|^2 + sum_j lambda_j |v_j|^2

    with W_ij = w0 + R_i C_j c_ij, lambda_i = regParam * (n_i + regOffset) ** regExponent.
    The default preset is MLlib ALS's objective, so code written for
    ``pyspark.ml.recommendation.ALS`` runs with ``WALS`` in its place; see
    :class:`~walsspark.ml.params.WALSParamsMixin` for every Param.

    Examples
    --------
    >>> wals = WALS(rank=64, maxIter=15, regParam=0.1, implicitPrefs=True,
    ...             userCol="user_id", itemCol="item_id", ratingCol="rating")
    >>> model = wals.fit(train_df)  # doctest: +SKIP
    >>> model.recommendForAllUsers(10)  # doctest: +SKIP
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.setParams(**kwargs)

    def setParams(self, **kwargs: Any) -> WALS:
        """Set Params by name (any of :class:`WALSParamsMixin`'s); unknown names raise."""
        unknown = [name for name in kwargs if not self.hasParam(name)]
        if unknown:
            raise TypeError(f"WALS got unexpected keyword arguments: {', '.join(unknown)}")
        return self._set(**kwargs)

    def _fit(self, dataset: DataFrame) -> WALSModel:
        from walsspark.block_tables import factor_rows_of_blocks
        from walsspark.ratings_read import ratings_from_frame
        from walsspark.training import train_model
        from walsspark.weighting import weight_columns

        self.check_model_params()
        params = wals_params(self)
        # A literal unique to this fit: the plans of two fits on the same data (a
        # CrossValidator's parallel fits) then never share cache entries, so one fit's
        # release cannot drop what another is still using.
        tagged = dataset.withColumn("__wals_fit", F.lit(uuid.uuid4().hex))
        ratings = ratings_from_frame(
            tagged,
            self.getUserCol(),
            self.getItemCol(),
            self.getRatingCol(),
            extra_cols=weight_columns(params),
        )
        source = {
            "input": None,
            "format": "dataframe",
            "user_col": self.getUserCol(),
            "item_col": self.getItemCol(),
            "rating_col": self.getRatingCol(),
            "timestamp_col": None,
        }
        result = train_model(dataset.sparkSession, ratings, params, source)
        # The model keeps its factor blocks as local checkpoints: computed once here, then
        # everything training cached is released. Like MLlib's persisted factors, the
        # checkpoints are freed when the model is garbage-collected (Spark's ContextCleaner;
        # on Connect, the server's cached relation), so a CrossValidator's many fits do
        # not pile up on the executors.
        blocks = {
            side: frame.localCheckpoint(eager=True) for side, frame in result.factor_blocks.items()
        }
        result.release()
        model = WALSModel(
            result.metadata,
            factor_rows_of_blocks(blocks["users"], params.rank),
            factor_rows_of_blocks(blocks["items"], params.rank),
            blocks,
        )
        self._copyValues(model)
        return model

    def write(self) -> MLWriter:
        """A writer of the estimator's Params (``metadata/``, as Spark ML writes them)."""
        from walsspark.ml.persistence import WALSWriter

        return WALSWriter(self)

    @classmethod
    def read(cls) -> MLReader[WALS]:
        """A reader of a saved estimator."""
        from walsspark.ml.persistence import WALSReader

        return WALSReader()


add_setters(WALS)
