"""Settings: one frozen object read from the environment (prefix `STREAMREC_`) and the CLI.

This is the only module that reads the environment. Top-level fields are plain
variables (`STREAMREC_KAFKA_BOOTSTRAP`); groups nest with `__`
(`STREAMREC_ENCODER__DEVICE=cuda`). Secrets are `SecretStr` and print masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamrec.model.events.parser import Limits
from streamrec.model.text.opinion_parts import DEFAULT_PARTS, parts_of

__all__ = [
    "CFSettings",
    "EncoderSettings",
    "KafkaSecurity",
    "RecommenderSettings",
    "Settings",
    "env_name",
]

ENV_PREFIX = "STREAMREC_"


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSecurity(_Group):
    """How to authenticate to Kafka; empty means PLAINTEXT."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="security.protocol"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (with SASL_* protocols)"
    )
    sasl_username: str | None = Field(None, description="SASL user name")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret)")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates")
    ssl_certfile: Path | None = Field(None, description="client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(None, description="client private key (mutual TLS)")
    ssl_key_password: SecretStr | None = Field(None, description="password of the client key (secret)")


class EncoderSettings(_Group):
    model: str | None = Field(
        None, description="local path or offline model name; default: the bundled all-MiniLM-L6-v2"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto uses CUDA when available")
    dtype: Literal["auto", "float32", "float16", "bfloat16", "int8"] = Field(
        "auto",
        description="auto: bf16/fp16 on CUDA; on a CPU bf16 where it multiplies bf16 natively (AVX-512 "
        "BF16, AMX), else fp32; int8: dynamic quantization on CPU, faster but its vectors stray from "
        "fp32's (see `streamrec bench`)",
    )
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="what runs the encoder: auto uses ONNX Runtime for float32 on a CPU (the same vectors, "
        "faster on the few texts a stream brings at a time), torch otherwise",
    )
    max_length: int = Field(
        256, ge=8, le=8192, description="tokens per encoder window (a longer text is read in several)"
    )
    batch_size: int = Field(64, ge=1, description="most texts per encoder batch")
    max_wait_ms: int = Field(
        0,
        ge=0,
        description="longest wait for more texts after a batch's first (0: a batch is what arrived while "
        "the last one was encoded, which a backlog fills up to batch_size)",
    )
    threads: int = Field(
        0,
        ge=0,
        description="CPU threads of the encoder's forward pass (0: every CPU the process may run on); "
        "where the encoder shares its cores with the other roles, fewer leave them room",
    )
    checkpoint_interval_s: float = Field(
        5.0,
        gt=0,
        description="how often the sentiment model and the offsets it learned up to are saved; what "
        "it learned from ratings reads reviews from each checkpoint on",
    )


class CFSettings(_Group):
    n_factors: int = Field(16, ge=1, description="latent factors of the implicit model")
    n_negatives: int = Field(4, ge=0, description="sampled negatives per interaction")
    lr: float = Field(0.05, gt=0, description="learning rate of the implicit model")
    checkpoint_interval_s: float = Field(
        5.0, gt=0, description="how often model and offsets are saved (and offsets committed)"
    )
    publish_interval_s: float = Field(1.0, gt=0, description="how often changed factors are published")
    batch_size: int = Field(
        10_000,
        ge=1,
        description="most events per fetch and learning batch (fewer, larger fetches: a broker that "
        "holds each fetch for its wait costs less per event)",
    )


class RecommenderSettings(_Group):
    k: int = Field(10, ge=1, le=1000, description="items per recommendation")
    coalesce_ms: int = Field(
        20, ge=0, description="events of one user within this window yield one recommendation"
    )
    batch_size: int = Field(
        2000, ge=1, description="most events per processing batch (more coalesce when behind)"
    )
    n_candidates: int = Field(50, ge=1, description="candidates per retrieval source")
    mmr_lambda: float = Field(0.9, ge=0, le=1, description="1 = relevance only; lower diversifies")
    half_life_days: float = Field(90.0, gt=0, description="decay of user profiles and trending counts")
    new_items: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of each list kept for items nobody took yet (the best of them by their "
        "text); 0 lets them compete with the rest as the learned blend ranks them",
    )
    learn_blend: bool = Field(
        True,
        description="learn the ranker's blend of signals from what users take among what was ranked "
        "for them (false: the prior weights as they are)",
    )
    item_model_every: int = Field(
        1000,
        ge=1,
        description="events between fits of the text-regularized item-to-item model (EASE); its "
        "first fits come sooner (after 100, 200, 400, ... events), and a worker's fits take at most a "
        "tenth of the time (after a fit that took t seconds, the next waits 9 t)",
    )
    item_model_items: int = Field(
        1000,
        ge=0,
        description="most taken items the item-to-item model learns weights for (a square matrix of "
        "this size is inverted at each fit; others are scored by their text); 0 turns it off",
    )
    checkpoint_interval_s: float = Field(
        5.0, gt=0, description="how often counts and offsets are saved (and offsets committed)"
    )
    retrieval: Literal["auto", "memory", "qdrant"] = Field(
        "auto",
        description="candidate search: exact in-memory index, or Qdrant (auto: Qdrant when a URL is set)",
    )


class Settings(BaseSettings):
    """Every knob of streamrec; each field's environment variable is `STREAMREC_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    data_dir: Path = Field(Path(".streamrec"), description="local state: checkpoints, Qdrant local storage")
    datasets_dir: Path | None = Field(
        None,
        description="public datasets (ml-100k/, amazon-musical-instruments-2014/) that `streamrec bench` "
        "and the tests read; unset: ../shared/data when it exists. Without them the bench replays "
        "the packaged sample and the tests that need them skip",
    )
    topic_prefix: str = Field("", description="prefix of every topic and consumer group name")
    port: int = Field(0, ge=0, le=65535, description="embedded broker port (0: any free port)")
    kafka_bootstrap: str | None = Field(
        None, description="HOST:PORT[,...] of an external Kafka; unset starts the embedded broker"
    )
    kafka_security: KafkaSecurity = KafkaSecurity()
    kafka_session_timeout_s: float = Field(
        10.0, ge=6.0, le=300.0, description="consumer group session timeout (Apache Kafka allows 6-300 s)"
    )
    kafka_fetch_max_wait_ms: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="longest a fetch may wait for data (default: 20 ms on the embedded broker, "
        "which holds every fetch this long; 500 ms, Kafka's own default, on an external one)",
    )
    partitions: int = Field(3, ge=1, description="partitions of the topics streamrec creates")
    replication_factor: int = Field(1, ge=1, description="replication of the topics streamrec creates")
    deadletter_retention_days: float = Field(
        14.0,
        gt=0,
        description="how long `deadletter` keeps a message (they are kept whole, user ids included, "
        "for an operator to read; a `forget` request cannot take them out, so this bounds how long "
        "a forgotten user's rejected events stay); set on the topic when streamrec creates or checks it",
    )
    qdrant_url: str | None = Field(None, description="Qdrant server URL; unset uses local mode on disk")
    qdrant_api_key: SecretStr | None = Field(None, description="Qdrant API key (secret)")
    qdrant_in_memory: bool = Field(False, description="local mode in memory instead of on disk")
    qdrant_flush_interval_s: float | None = Field(
        None,
        gt=0,
        description="how often changed vectors are written to Qdrant, the view's lag "
        "(default: 2 s to a server; 60 s in local mode, which commits every point to disk)",
    )
    metrics_host: str = Field("127.0.0.1", description="bind address of the Prometheus endpoint")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus endpoint port (0: any)")
    blas_threads: int = Field(
        1,
        ge=1,
        description="BLAS threads of each worker process (numpy's matrix products in ranking). Ranking "
        "makes many small products: a second thread spins between them, doubling the CPU a click "
        "costs for no gain in latency, and takes it from the other roles",
    )
    api_host: str = Field("127.0.0.1", description="bind address of the HTTP API (role `api`)")
    api_port: int = Field(8000, ge=0, le=65535, description="HTTP API port (0: any)")
    api_token: SecretStr | None = Field(
        None,
        description="bearer token the HTTP API asks of every request but /healthz (secret; a user's "
        "profile and lists are personal data); unset with no api_token_file: the API is open",
    )
    api_token_file: Path | None = Field(
        None,
        description="file holding the API's bearer token (a mounted secret); read at start, "
        "surrounding whitespace dropped; used when api_token is unset",
    )
    api_seed: Path | None = Field(
        None,
        description="checkpoint of another API process (its checkpoint.pkl, or its state directory, on "
        "shared storage) that a new API process with none of its own starts from, reading on from there",
    )
    api_snapshot_interval_s: float = Field(
        300.0,
        ge=0,
        description="how often an API process publishes its checkpoint to the compacted topic "
        "api-snapshots (and as it stops), which a new API process with no checkpoint and no api_seed "
        "starts from instead of reading every topic from its beginning (0: none published or read)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="log level")
    language: Literal["en", "zh"] = Field("en", description="language of reasons and readable profiles")
    opinions: list[str] = Field(
        list(DEFAULT_PARTS),
        description="the parts of reading reviews as opinions that are on: cf_negatives (CF learns a "
        "1-2 star review as a negative), dislikes (a review that reads negative pushes down what "
        "resembles its item), aspects (reputations, aspect match, quoted reasons); [] for none. "
        "Whatever is on, a negative review is never a like (no pull on the profile, no count in "
        "popularity or co-occurrence)",
    )
    aspects_file: Path | None = Field(
        None,
        description="JSON list of the aspects reviews are read for ([{name, phrases, labels}]); "
        "default: value, quality, service, ease of use, appearance",
    )
    modalities: dict[str, int] = Field(
        default_factory=dict,
        description="vectors of other modalities producers send with items, by name and dimension, e.g. "
        '{"image": 512}: validated (a wrong one is dead-lettered), indexed, searched and stored in Qdrant',
    )
    image_model: Path | None = Field(
        None,
        description="a local CLIP-family model (weights and image processor) the encoder embeds items' "
        "`image` with, into the modality `image` (declare it in modalities with the model's dimension)",
    )
    rules: Path | None = Field(
        None,
        description="TOML (or .json) file of rules every list obeys: exclude_tags, require_tags, "
        "exclude_items, boost/bury ([{items, tags, by}]), pin ([{item, position}]); checked at start",
    )
    encoder: EncoderSettings = EncoderSettings()
    cf: CFSettings = CFSettings()

    @field_validator("modalities")
    @classmethod
    def _named_modalities(cls, value: dict[str, int]) -> dict[str, int]:
        for name, dim in value.items():
            if name in ("text", "cf") or not name.replace("_", "").isalnum():
                raise ValueError(
                    f"a modality is named with letters, digits and _, not text or cf; got {name!r}"
                )
            if not 1 <= dim <= 8192:
                raise ValueError(f"modality {name!r} must have a dimension from 1 to 8192, got {dim}")
        return value

    @model_validator(mode="after")
    def _image_space(self) -> Settings:
        if self.image_model is not None and "image" not in self.modalities:
            raise ValueError(
                'an image model needs the modality it writes: declare {"image": DIM} in modalities, DIM '
                "being the model's projection dimension"
            )
        return self

    @model_validator(mode="after")
    def _readable_token(self) -> Settings:
        self.api_secret()  # an unreadable or empty token file is said at start, not at the first request
        return self

    @field_validator("rules")
    @classmethod
    def _readable_rules(cls, value: Path | None) -> Path | None:
        if value is not None:
            from streamrec.model.errors import StreamrecError
            from streamrec.model.ranking.rules import load_rules

            try:
                load_rules(value)
            except StreamrecError as exc:  # says what is wrong, and where
                raise ValueError(str(exc)) from None
        return value

    @field_validator("opinions")
    @classmethod
    def _known_parts(cls, value: list[str]) -> list[str]:
        parts_of(value)  # names every unknown part
        return value

    recommender: RecommenderSettings = RecommenderSettings()
    limits: Limits = Limits()

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def api_secret(self) -> str | None:
        """The token the API asks for: `api_token`, else the content of `api_token_file`, else None."""
        if self.api_token is not None:
            token = self.api_token.get_secret_value().strip()
        elif self.api_token_file is not None:
            try:
                token = self.api_token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    f"api_token_file {str(self.api_token_file)!r} cannot be read: {exc}"
                ) from None
        else:
            return None
        if not token:
            raise ValueError("the API token must not be empty (unset api_token and api_token_file for none)")
        return token

    def aspects(self) -> tuple[Any, ...]:
        """The aspects reviews are read for: the file's, or the defaults."""
        from streamrec.model.text.opinions import DEFAULT_ASPECTS, load_aspects

        return load_aspects(self.aspects_file) if self.aspects_file is not None else DEFAULT_ASPECTS

    def list_rules(self) -> Any:
        """The rules every list obeys (`streamrec.model.ranking.rules.Rules`): the file's, or none."""
        from streamrec.model.ranking.rules import Rules, load_rules

        return load_rules(self.rules) if self.rules is not None else Rules()

    def state_dir(self, role: str) -> Path:
        """Where `role` keeps its local state (its checkpoint) under `data_dir`."""
        return self.data_dir / self.topic(role)

    def datasets(self) -> Path | None:
        """The directory of public datasets, if there is one (see `datasets_dir`)."""
        if self.datasets_dir is not None:
            return self.datasets_dir if self.datasets_dir.is_dir() else None
        repository = Path(__file__).resolve().parents[2]
        for base in (Path.cwd().parent, repository.parent):
            candidate = base / "shared" / "data"
            if candidate.is_dir():
                return candidate
        return None

    @property
    def fetch_max_wait_ms(self) -> int:
        """The consumers' fetch wait. Apache Kafka answers a fetch as soon as data is there, so
        a long wait costs nothing; the embedded broker holds every fetch for the whole wait, so
        there it is short. A short wait is wrong on slow storage: a broker that cannot read a
        batch within it answers empty, again and again."""
        if self.kafka_fetch_max_wait_ms is not None:
            return self.kafka_fetch_max_wait_ms
        return 500 if self.kafka_bootstrap else 20

    @property
    def qdrant_flush_s(self) -> float:
        if self.qdrant_flush_interval_s is not None:
            return self.qdrant_flush_interval_s
        return 2.0 if self.qdrant_url else 60.0

    def masked(self) -> dict[str, Any]:
        """The settings as a dict with every secret masked, for logs."""
        return self.model_dump(mode="json")


def env_name(*path: str) -> str:
    """The environment variable of a setting: `env_name("encoder", "device")`.

    >>> env_name("kafka_bootstrap"), env_name("encoder", "device")
    ('STREAMREC_KAFKA_BOOTSTRAP', 'STREAMREC_ENCODER__DEVICE')
    """
    return ENV_PREFIX + "__".join(p.upper() for p in path)
