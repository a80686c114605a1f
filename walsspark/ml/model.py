"""WALSModel: a trained walsspark model as a pyspark.ml Model (MLlib ALSModel's methods).

It holds the user and item factors (``id``, ``features``), the factor blocks with the
training pairs (what ``excludeSeen`` leaves out and what the recommend methods score in
place) and the run's metadata. It is saved in the command line's model directory format
(:mod:`walsspark.model`), so ``walsspark recommend`` serves a model saved from a notebook
and :meth:`WALSModel.load` reads a model the command line trained. Saving uses
walsspark's own writer on every file system and on Spark Connect: pyspark's default
``MLWriter.overwrite()`` reaches for the JVM, which a Connect client does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pyspark.ml import Model
from pyspark.ml.util import MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import DataFrame

from walsspark.errors import InputError
from walsspark.ml.params import WALSModelParams, add_setters
from walsspark.params import WALSParams
from walsspark.ratings_read import column


@dataclass
class WALSTrainingSummary:
    """What training reported, sweep by sweep.

    Attributes
    ----------
    history : list of dict
        Per sweep: ``sweep``, ``loss`` (the objective after it), ``seconds`` and, when
        ratings were held out, ``holdout`` metrics.
    fitSeconds : float
        Wall time of the fit (layout and sweeps).
    """

    history: list[dict] = field(default_factory=list)
    fitSeconds: float = 0.0

    @property
    def objectiveHistory(self) -> list[float]:
        """The objective after every sweep (as MLlib summaries' ``objectiveHistory``)."""
        return [float(record["loss"]) for record in self.history]

    @property
    def totalIterations(self) -> int:
        """Sweeps run (fewer than ``maxIter`` when ``tol`` stopped training)."""
        return len(self.history)


class WALSModel(Model, WALSModelParams, MLWritable, MLReadable["WALSModel"]):
    """Model fitted by :class:`~walsspark.ml.WALS`.

    Parameters
    ----------
    metadata : dict
        The model's metadata (``params``, ``data``, ``history``...; :mod:`walsspark.model`).
    user_factors, item_factors : DataFrame
        ``id``, ``features`` (array<float>).
    factor_blocks : dict, optional
        ``{"users": DataFrame, "items": DataFrame}``: factor blocks with the training
        pairs (:data:`walsspark.block_tables.FACTOR_BLOCK_COLUMNS`); without them ``excludeSeen``
        is not available.
    """

    def __init__(
        self,
        metadata: dict | None = None,
        user_factors: DataFrame | None = None,
        item_factors: DataFrame | None = None,
        factor_blocks: dict[str, DataFrame] | None = None,
    ) -> None:
        super().__init__()
        self._metadata = metadata or {}
        self._user_factors = user_factors
        self._item_factors = item_factors
        self._factor_blocks = factor_blocks or {}
        # Where the model was loaded from (its tables are read from there), if it was.
        self._location: str | None = None

    # -- what MLlib's ALSModel has ---------------------------------------------------------

    @property
    def rank(self) -> int:
        """Rank of the factors."""
        return int(self._metadata["params"]["rank"])

    @property
    def userFactors(self) -> DataFrame:
        """``id``, ``features`` (array<float>) per user."""
        return self._user_factors

    @property
    def itemFactors(self) -> DataFrame:
        """``id``, ``features`` (array<float>) per item."""
        return self._item_factors

    @property
    def hasSummary(self) -> bool:
        """Always true: the history is kept with the model, also once saved."""
        return True

    @property
    def summary(self) -> WALSTrainingSummary:
        """The per-sweep history of training (saved with the model)."""
        return WALSTrainingSummary(
            history=list(self._metadata.get("history", [])),
            fitSeconds=float(self._metadata.get("fit_seconds", 0.0)),
        )

    @property
    def metadata(self) -> dict:
        """The model's metadata: training ``params`` (the objective as trained), ``data``
        (columns, id types, counts), ``history``, ``evaluation``."""
        return self._metadata

    @property
    def trainingParams(self) -> WALSParams:
        """The objective and run settings the model was trained with."""
        return WALSParams.from_dict(self._metadata["params"])

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from walsspark.ml.recommendations import predict, ranking_rows

        self.check_model_params()
        if self.getRankingK() > 0:
            self._check_numeric_items()
            wanted = dataset.select(column(self.getUserCol()))
            lists = self._recommend_subset(wanted, self.getRankingK(), "users", True)
            return ranking_rows(
                dataset,
                lists,
                self.getUserCol(),
                self.getItemCol(),
                self.getPredictionCol(),
                self.getColdStartStrategy(),
            )
        return predict(
            dataset,
            self._user_factors,
            self._item_factors,
            self.getUserCol(),
            self.getItemCol(),
            self.getPredictionCol(),
            self.getColdStartStrategy(),
        )

    def recommendForAllUsers(self, numItems: int) -> DataFrame:
        """Top ``numItems`` items for every user: ``<userCol>``, ``recommendations``
        (array of struct ``<itemCol>``, ``rating``), best first; items the user was trained
        on are left out when ``excludeSeen`` is set."""
        return self._recommend_all(numItems, "users")

    def recommendForAllItems(self, numUsers: int) -> DataFrame:
        """Top ``numUsers`` users for every item: ``<itemCol>``, ``recommendations``
        (array of struct ``<userCol>``, ``rating``)."""
        return self._recommend_all(numUsers, "items")

    def recommendForUserSubset(self, dataset: DataFrame, numItems: int) -> DataFrame:
        """As :meth:`recommendForAllUsers`, for the users in ``dataset``'s ``userCol``
        (users the model lacks get no row, as MLlib)."""
        return self._mllib_lists(
            self._recommend_subset(dataset, numItems, "users", self.getExcludeSeen()), "users"
        )

    def recommendForItemSubset(self, dataset: DataFrame, numUsers: int) -> DataFrame:
        """As :meth:`recommendForAllItems`, for the items in ``dataset``'s ``itemCol``."""
        return self._mllib_lists(
            self._recommend_subset(dataset, numUsers, "items", self.getExcludeSeen()), "items"
        )

    # -- fold-in --------------------------------------------------------------------------

    def projectUsers(self, dataset: DataFrame) -> DataFrame:
        """Factors of new users from their ratings, without retraining (fold-in).

        Parameters
        ----------
        dataset : DataFrame
            ``userCol``, ``itemCol``, ``ratingCol`` (and ``weightCol`` when the model was
            trained with one): the new users' ratings of items the model knows (others are
            ignored).

        Returns
        -------
        DataFrame
            ``id``, ``features`` (array<float>), ``rated`` (ratings of known items used).
        """
        return self._project(dataset, "users")

    def projectItems(self, dataset: DataFrame) -> DataFrame:
        """Factors of new items from their ratings by known users (see :meth:`projectUsers`)."""
        return self._project(dataset, "items")

    def _project(self, dataset: DataFrame, side: str) -> DataFrame:
        from walsspark.fold_in import fold_in
        from walsspark.ratings_read import ratings_from_frame
        from walsspark.weighting import weight_columns

        params = self.trainingParams
        if params.weight_col and self.isSet(self.weightCol):
            # The confidences of the new ratings, from the column the model names.
            params = replace(params, weight_col=self.getWeightCol())
        ratings = ratings_from_frame(
            dataset,
            self.getUserCol(),
            self.getItemCol(),
            self.getRatingCol(),
            extra_cols=weight_columns(params),
        )
        fixed = self._item_factors if side == "users" else self._user_factors
        data = self._metadata["data"]
        fixed_blocks = self._blocks("items" if side == "users" else "users")
        factors, new = fold_in(ratings, fixed, params, data, side, "the DataFrame", fixed_blocks)
        new.unpersist()  # the command line reuses it; here nothing does
        return factors

    # -- recommending ---------------------------------------------------------------------

    def _sides(self, side: str) -> tuple[DataFrame, DataFrame, int]:
        data = self._metadata["data"]
        if side == "users":
            return self._user_factors, self._item_factors, int(data["num_items"])
        return self._item_factors, self._user_factors, int(data["num_users"])

    def _blocks(self, side: str) -> DataFrame | None:
        return self._factor_blocks.get(side)

    def _require_blocks(self, side: str) -> DataFrame:
        blocks = self._blocks(side)
        if blocks is None:
            raise InputError(
                "this model was saved without its training pairs (user_blocks/, "
                "item_blocks/): excludeSeen and rankingK need them; set excludeSeen=False"
            )
        return blocks

    def _check_numeric_items(self) -> None:
        if self._metadata["data"].get("item_id_type") == "string":
            raise InputError(
                "rankingK needs numeric item ids (RankingEvaluator compares arrays of "
                "doubles); this model's item ids are strings"
            )

    def _recommend_all(self, k: int, side: str) -> DataFrame:
        from walsspark.recommend import recommend, recommend_from_blocks

        _check_k(k)
        exclude = self.getExcludeSeen()
        own, other = self._blocks(side), self._blocks(_other(side))
        query, candidates, num_candidates = self._sides(side)
        if own is not None and other is not None:
            lists = recommend_from_blocks(
                own, other, k, self.rank, num_candidates=num_candidates, exclude_seen=exclude
            )
        else:
            if exclude:
                self._require_blocks(side)
            lists = recommend(
                query.sparkSession, query, candidates, k, self.rank, num_candidates=num_candidates
            )
        return self._mllib_lists(lists, side)

    def _recommend_subset(self, dataset: DataFrame, k: int, side: str, exclude: bool) -> DataFrame:
        from walsspark.block_tables import training_pairs
        from walsspark.cluster import default_parallelism
        from walsspark.ml.recommendations import require_column
        from walsspark.recommend import recommend

        _check_k(k)
        query, candidates, num_candidates = self._sides(side)
        id_col = self.getUserCol() if side == "users" else self.getItemCol()
        require_column(dataset, id_col)
        id_type = query.schema["id"].dataType.simpleString()
        wanted = dataset.select(column(id_col).try_cast(id_type).alias("id")).distinct()
        seen = None
        if exclude:
            pairs = training_pairs(self._require_blocks(side))
            seen = pairs.join(wanted.withColumnRenamed("id", "query"), "query", "left_semi")
        spark = query.sparkSession
        return recommend(
            spark,
            query.join(wanted, "id", "left_semi"),
            candidates,
            k,
            self.rank,
            seen=seen,
            num_query_blocks=default_parallelism(spark),
            num_candidates=num_candidates,
        )

    def _mllib_lists(self, lists: DataFrame, side: str) -> DataFrame:
        from walsspark.ml.recommendations import as_mllib_lists

        user, item = self.getUserCol(), self.getItemCol()
        return as_mllib_lists(lists, *((user, item) if side == "users" else (item, user)))

    # -- persistence ----------------------------------------------------------------------

    def write(self) -> MLWriter:
        """A writer of the model in walsspark's model directory format (see the module)."""
        from walsspark.ml.persistence import WALSModelWriter

        return WALSModelWriter(self)

    @classmethod
    def read(cls) -> MLReader[WALSModel]:
        """A reader of walsspark model directories (also those the command line wrote)."""
        from walsspark.ml.persistence import WALSModelReader

        return WALSModelReader()

    def ml_keys(self, spark_version: str) -> dict[str, Any]:
        """The Spark ML keys of the model's metadata line (its uid and Params)."""
        from walsspark.ml.names import ml_metadata

        param_map = {param.name: value for param, value in self._paramMap.items()}
        default_map = {param.name: value for param, value in self._defaultParamMap.items()}
        keys = ml_metadata(
            self._metadata.get("params", {}),
            self._metadata.get("data", {}),
            spark_version,
            uid=self.uid,
            param_map=param_map,
        )
        keys["defaultParamMap"] = default_map
        return keys


add_setters(WALSModel)


def _other(side: str) -> str:
    return "items" if side == "users" else "users"


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"the number of recommendations must be an integer >= 1, got {k!r}")
