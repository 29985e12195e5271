"""Settings: their defaults are the model's defaults, so the workers run what evaluation measured."""

from __future__ import annotations

import inspect

from streamrec.model.cf.mf import OnlineCF
from streamrec.model.ranking.ranker import HybridRanker
from streamrec.model.serving.recommender import Recommender
from streamrec.streams.settings import CFSettings, RecommenderSettings


def _default(callable_: object, name: str) -> object:
    return inspect.signature(callable_).parameters[name].default  # type: ignore[arg-type]


def test_recommender_settings_default_to_the_evaluated_ranker() -> None:
    settings = RecommenderSettings()
    assert settings.n_candidates == _default(HybridRanker, "n_candidates")
    assert settings.mmr_lambda == _default(HybridRanker, "mmr_lambda")
    assert settings.half_life_days * 86_400 == _default(Recommender, "half_life_s")


def test_cf_settings_default_to_the_evaluated_model() -> None:
    settings = CFSettings()
    assert settings.n_factors == _default(OnlineCF, "n_factors")
    assert settings.n_negatives == _default(OnlineCF, "n_negatives")
    assert settings.lr == _default(OnlineCF, "lr")
