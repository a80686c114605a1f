"""walsspark for pyspark.ml: :class:`WALS` (an Estimator) and :class:`WALSModel` (a Model).

    from walsspark.ml import WALS, WALSModel

    model = WALS(rank=64, maxIter=15, regParam=0.1, userCol="user_id",
                 itemCol="item_id").fit(train_df)
    model.transform(test_df)
    model.recommendForAllUsers(10)

Imported lazily: ``walsspark.ml.names``, which the command line uses, must not import
pyspark.ml.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WALS", "WALSModel", "WALSTrainingSummary"]


def __getattr__(name: str) -> Any:
    if name == "WALS":
        from walsspark.ml.estimator import WALS

        return WALS
    if name in ("WALSModel", "WALSTrainingSummary"):
        from walsspark.ml import model

        return getattr(model, name)
    raise AttributeError(f"module 'walsspark.ml' has no attribute {name!r}")
