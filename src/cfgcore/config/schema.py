"""Typed schema of the known configuration sections, and its JSON Schema export.

The msgspec Structs below are the single source of truth for the shape of the
sections cfgcore knows about (the music-streaming default set). Two things are
derived from them:

* the validation engine compiles them once into a checker that walks a config
  tree and reports *every* type, required-field, range, allowed-value and unknown
  key problem with its key path (msgspec's own decoder stops at the first one);
* :func:`json_schema` exports them as JSON Schema for editors (``cfgcore schema``).

Conventions that make the schema usable on both raw and transformed trees:

* Every field is optional unless a section is meaningless without it (a cache
  layer needs a ``ttl``, an alert needs ``name``, ``condition`` and ``severity``).
* A whole-string environment reference such as ``"${KAFKA_HOSTS}"`` is accepted
  wherever a scalar is expected: its type is only known after substitution.
* Sizes accept ``"2GB"``-style strings or byte counts; durations accept seconds
  (int or float) or ``"30s"``/``"5m"``/``"1h30m"``-style strings, so the tree
  validates the same before and after the size/duration transformations.
* Top-level keys outside the schema are allowed (services add their own
  sections); an unknown key *inside* a known section is reported as a warning
  with a "did you mean" suggestion. Sections that are open by nature (for
  example ``data_sources``, which may hold any number of sources) set the class
  variable ``open_section`` and never warn about extra keys.

Numeric ranges carry ``extra={"rule": ...}`` when a business rule owns them, so a
violation is reported once, under that rule's id.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = [
    "SCHEMA_VERSION",
    "DURATION_PATTERN",
    "ENV_REF_PATTERN",
    "SIZE_PATTERN",
    "ConfigSchema",
    "json_schema",
    "json_schema_text",
    "parse_duration",
]

SCHEMA_VERSION = 1

# A value that is exactly one ${VAR}, ${VAR:-default} or ${VAR:?message} reference.
ENV_REF_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::[-?][^}]*)?\}$"
# The unit and the whitespace before it are one optional group: with ``\s*`` on both
# sides of an optional unit, a run of spaces could be split between them in n ways,
# and a 40 kB value took seconds to refuse (quadratic backtracking).
# Digits are [0-9]: \d also matches other scripts' digits ("５s", "db:８０８０"), which
# YAML 1.2, JSON and TOML read as text and the transforms leave as text.
SIZE_PATTERN = r"^\s*[0-9]+(?:\.[0-9]+)?(?:\s*(?:[KMGTPE]i?B|[KMGTPE]|B|bytes))?\s*$"
DURATION_PATTERN = r"^\s*(?:[0-9]+(?:\.[0-9]+)?\s*(?:ms|s|m|h|d)\s*)+$"
HOST_PORT_PATTERN = r"^(?:\$\{[^}]+\}|[A-Za-z0-9_.\-\[\]:]+:[0-9]{1,5})$"

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)")
_DURATION_FULL = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float | None:
    """Seconds for a duration given as a number or a ``"1h30m"``-style string, else None.

    Used by rules that compare durations (cache TTL ordering) on trees that may or
    may not have gone through the duration transformation. Never raises.

    >>> parse_duration("1h30m"), parse_duration(300), parse_duration("soon")
    (5400.0, 300.0, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _DURATION_FULL.match(value):
        return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))
    return None


# --- reusable field types -------------------------------------------------------------------

Kbps = Annotated[
    int, Meta(ge=8, le=9216, description="Bitrate in kbit/s (8 .. 9216, the hi-res FLAC ceiling)")
]
Ratio = Annotated[float, Meta(ge=0, le=1, description="A fraction between 0 and 1")]
PositiveInt = Annotated[int, Meta(ge=1)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
Utilisation = Annotated[
    float,
    Meta(
        ge=1,
        le=100,
        description="Target utilisation in percent",
        extra={"rule": "streaming.auto_scaling"},
    ),
]
RetentionDays = Annotated[int, Meta(ge=1, description="Retention in days")]
Size = (
    Annotated[str, Meta(pattern=SIZE_PATTERN, description='Size such as "2GB" or "512MiB"')]
    | Annotated[int, Meta(ge=0, description="Size in bytes")]
)
Duration = (
    Annotated[float, Meta(ge=0, description="Duration in seconds")]
    | Annotated[
        str, Meta(pattern=DURATION_PATTERN, description='Duration such as "30s" or "1h30m"')
    ]
)
HostPort = Annotated[str, Meta(pattern=HOST_PORT_PATTERN, description="host:port")]
Codec = Literal["aac", "mp3", "ogg", "vorbis", "opus", "flac", "alac", "wav"]
Severity = Literal["critical", "error", "warning", "info"]


# --- music_streaming ------------------------------------------------------------------------


class Bitrates(Struct, kw_only=True):
    """Bitrate per quality tier in kbit/s, ordered premium >= high >= normal >= low."""

    premium: Kbps | UnsetType = UNSET
    high: Kbps | UnsetType = UNSET
    normal: Kbps | UnsetType = UNSET
    low: Kbps | UnsetType = UNSET


class AudioQuality(Struct, kw_only=True):
    """Audio quality per user tier and the codecs offered."""

    bitrates: Bitrates | UnsetType = UNSET
    codecs: Annotated[list[Codec], Meta(min_length=1)] | UnsetType = UNSET
    default_codec: Codec | UnsetType = UNSET
    default_quality: Literal["premium", "high", "normal", "low"] | UnsetType = UNSET
    adaptive_streaming: bool | UnsetType = UNSET
    quality_adaptation_threshold: Ratio | UnsetType = UNSET
    premium_bitrate: Kbps | UnsetType = UNSET
    standard_bitrate: Kbps | UnsetType = UNSET


class StreamDelivery(Struct, kw_only=True):
    """Buffering and latency of audio delivery."""

    open_section: ClassVar[bool] = True
    buffer_size: Size | UnsetType = UNSET
    chunk_duration: Duration | UnsetType = UNSET
    max_stream_latency: Duration | UnsetType = UNSET
    prefetch_tracks: NonNegativeInt | UnsetType = UNSET
    offline_mode: bool | UnsetType = UNSET


class Cdn(Struct, kw_only=True):
    """Content delivery network for audio files."""

    open_section: ClassVar[bool] = True
    provider: str | UnsetType = UNSET
    base_url: str | UnsetType = UNSET
    signed_urls: bool | UnsetType = UNSET
    region: str | UnsetType = UNSET


class MusicStreaming(Struct, kw_only=True):
    """Streaming behaviour: audio quality management and delivery."""

    open_section: ClassVar[bool] = True
    audio_quality: AudioQuality | UnsetType = UNSET
    streaming: StreamDelivery | UnsetType = UNSET
    cdn: Cdn | UnsetType = UNSET


# --- user_segments --------------------------------------------------------------------------


class UserSegments(Struct, kw_only=True):
    """Subscription segments: priority (1 = highest) and segment-specific features."""

    priority_levels: dict[str, PositiveInt] | UnsetType = UNSET
    segment_specific_features: dict[str, list[str]] | UnsetType = UNSET


# --- recommendation_engine ------------------------------------------------------------------


class CollaborativeFiltering(Struct, kw_only=True):
    """Matrix-factorisation recommender parameters."""

    embedding_dim: PositiveInt | UnsetType = UNSET
    learning_rate: Annotated[float, Meta(gt=0, le=1)] | UnsetType = UNSET
    regularization: Annotated[float, Meta(ge=0)] | UnsetType = UNSET
    negative_sampling_rate: NonNegativeInt | UnsetType = UNSET


class ContentBased(Struct, kw_only=True):
    """Content-based recommender weights."""

    audio_features_weight: Ratio | UnsetType = UNSET
    lyrical_features_weight: Ratio | UnsetType = UNSET
    metadata_weight: Ratio | UnsetType = UNSET
    similarity_threshold: Ratio | UnsetType = UNSET


class DeepNeuralNetwork(Struct, kw_only=True):
    """Deep recommender architecture."""

    architecture: str | UnsetType = UNSET
    hidden_layers: list[PositiveInt] | UnsetType = UNSET
    dropout_rate: Annotated[float, Meta(ge=0, lt=1)] | UnsetType = UNSET


class RecommendationModels(Struct, kw_only=True):
    """The recommendation models and their parameters."""

    collaborative_filtering: CollaborativeFiltering | UnsetType = UNSET
    content_based: ContentBased | UnsetType = UNSET
    deep_neural_network: DeepNeuralNetwork | UnsetType = UNSET


class FeatureEngineering(Struct, kw_only=True):
    """Feature extraction for the recommenders."""

    open_section: ClassVar[bool] = True
    extended_features: bool | UnsetType = UNSET
    audio_embedding_window: Duration | UnsetType = UNSET


class RecommendationEngine(Struct, kw_only=True):
    """Recommendation engine settings."""

    models: RecommendationModels | UnsetType = UNSET
    feature_engineering: FeatureEngineering | UnsetType = UNSET
    real_time_updates: bool | UnsetType = UNSET
    cold_start_strategy: str | UnsetType = UNSET
    diversity_factor: Ratio | UnsetType = UNSET


# --- gdpr_compliance ------------------------------------------------------------------------


class DataRetention(Struct, kw_only=True):
    """Retention limits in days (GDPR rules cap them at 2555 / 365 / 1095)."""

    user_data_days: RetentionDays | UnsetType = UNSET
    logs_days: RetentionDays | UnsetType = UNSET
    analytics_data_days: RetentionDays | UnsetType = UNSET


class GdprCompliance(Struct, kw_only=True):
    """GDPR switches; consent and erasure must be on under the EU geographic profile."""

    consent_required: bool | UnsetType = UNSET
    right_to_be_forgotten: bool | UnsetType = UNSET
    data_portability: bool | UnsetType = UNSET
    privacy_by_design: bool | UnsetType = UNSET
    data_retention: DataRetention | UnsetType = UNSET


# --- caching_layers -------------------------------------------------------------------------


class CacheLayer(Struct, kw_only=True):
    """One cache tier; TTLs must grow from l1 to l3."""

    ttl: Duration
    type: str | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    url: str | UnsetType = UNSET
    size_limit: Size | UnsetType = UNSET
    eviction_policy: Literal["lru", "lfu", "fifo", "ttl", "random", "arc"] | UnsetType = UNSET
    sharding_strategy: str | UnsetType = UNSET
    geographic_distribution: bool | UnsetType = UNSET


class CachingLayers(Struct, kw_only=True):
    """Application (l1), distributed (l2) and edge (l3) caches."""

    l1_cache: CacheLayer | UnsetType = UNSET
    l2_cache: CacheLayer | UnsetType = UNSET
    l3_cache: CacheLayer | UnsetType = UNSET


# --- auto_scaling ---------------------------------------------------------------------------


class AutoScaling(Struct, kw_only=True):
    """Horizontal scaling bounds and targets (min <= max, targets within 1..100)."""

    enabled: bool | UnsetType = UNSET
    min_replicas: NonNegativeInt | UnsetType = UNSET
    max_replicas: PositiveInt | UnsetType = UNSET
    target_cpu_utilization: Utilisation | UnsetType = UNSET
    target_memory_utilization: Utilisation | UnsetType = UNSET
    scaling_policies: (
        Literal["predictive", "reactive", "scheduled", "step", "target_tracking"] | UnsetType
    ) = UNSET


# --- health_monitoring ----------------------------------------------------------------------


class Probe(Struct, kw_only=True):
    """An HTTP health probe; delays and timeouts in seconds."""

    path: Annotated[str, Meta(pattern=r"^/", description="URL path, starting with /")]
    initial_delay: NonNegativeInt | UnsetType = UNSET
    period: PositiveInt | UnsetType = UNSET
    timeout: PositiveInt | UnsetType = UNSET
    failure_threshold: PositiveInt | UnsetType = UNSET
    success_threshold: PositiveInt | UnsetType = UNSET


class HealthChecks(Struct, kw_only=True):
    """Kubernetes-style probes."""

    liveness_probe: Probe | UnsetType = UNSET
    readiness_probe: Probe | UnsetType = UNSET
    startup_probe: Probe | UnsetType = UNSET


class Metrics(Struct, kw_only=True):
    """Metrics endpoint exposed for scraping."""

    open_section: ClassVar[bool] = True
    enabled: bool | UnsetType = UNSET
    endpoint: str | UnsetType = UNSET
    scrape_interval: Duration | UnsetType = UNSET


class HealthMonitoring(Struct, kw_only=True):
    """Health checks and monitoring endpoints."""

    open_section: ClassVar[bool] = True
    comprehensive_health_checks: HealthChecks | UnsetType = UNSET
    metrics: Metrics | UnsetType = UNSET
    # How long a followed configuration or flag document may go unconfirmed before
    # the readiness probe fails (cfgcore.observability.health; default 60 s).
    max_staleness: Duration | UnsetType = UNSET


# --- data_sources ---------------------------------------------------------------------------


class KafkaConsumer(Struct, kw_only=True):
    """Kafka consumer settings."""

    open_section: ClassVar[bool] = True
    group_id: str | UnsetType = UNSET
    max_poll_records: PositiveInt | UnsetType = UNSET
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] | UnsetType = UNSET
    auto_offset_reset: Literal["earliest", "latest", "none"] | UnsetType = UNSET
    enable_auto_commit: bool | UnsetType = UNSET


class KafkaCluster(Struct, kw_only=True):
    """Kafka connection; at least one bootstrap server."""

    open_section: ClassVar[bool] = True
    bootstrap_servers: Annotated[list[HostPort], Meta(min_length=1)]
    consumer_configuration: KafkaConsumer | UnsetType = UNSET
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | UnsetType = UNSET
    sasl_mechanism: str | UnsetType = UNSET
    sasl_username: str | UnsetType = UNSET
    sasl_password: str | UnsetType = UNSET
    topics: list[str] | dict[str, Any] | UnsetType = UNSET


class DataSources(Struct, kw_only=True):
    """External data sources; only Kafka has a fixed shape, other sources are free-form."""

    open_section: ClassVar[bool] = True
    kafka_cluster: KafkaCluster | UnsetType = UNSET


# --- elasticsearch_cluster ------------------------------------------------------------------


class IndexConfiguration(Struct, kw_only=True):
    """Elasticsearch index settings."""

    prefix: str | UnsetType = UNSET
    shards: PositiveInt | UnsetType = UNSET
    replicas: NonNegativeInt | UnsetType = UNSET
    compression: Literal["lz4", "default", "best_compression", "deflate"] | UnsetType = UNSET
    refresh_interval: Duration | UnsetType = UNSET


class ElasticsearchCluster(Struct, kw_only=True):
    """Elasticsearch connection; at least one host."""

    hosts: Annotated[list[HostPort], Meta(min_length=1)]
    index_configuration: IndexConfiguration | UnsetType = UNSET
    username: str | UnsetType = UNSET
    password: str | UnsetType = UNSET
    use_ssl: bool | UnsetType = UNSET
    verify_certs: bool | UnsetType = UNSET


# --- alerts, limits, misc -------------------------------------------------------------------


class Alert(Struct, kw_only=True):
    """One alert: a metric condition, a severity and who to notify."""

    name: str
    condition: str  # "METRIC OP NUMBER": cfgcore.observability.alerts lists the metrics
    severity: Severity
    notification: list[str] | UnsetType = UNSET
    description: str | UnsetType = UNSET
    for_: Duration | UnsetType = msgspec.field(default=UNSET, name="for")


class UserLimits(Struct, kw_only=True):
    """Per-segment limits; premium users get at least 5 concurrent streams."""

    open_section: ClassVar[bool] = True
    premium_concurrent_streams: NonNegativeInt | UnsetType = UNSET
    family_concurrent_streams: NonNegativeInt | UnsetType = UNSET
    student_concurrent_streams: NonNegativeInt | UnsetType = UNSET
    free_concurrent_streams: NonNegativeInt | UnsetType = UNSET


class AnomalyDetection(Struct, kw_only=True):
    """Anomaly detection tuning."""

    open_section: ClassVar[bool] = True
    enabled: bool | UnsetType = UNSET
    threshold: Ratio | UnsetType = UNSET
    sample_size: PositiveInt | UnsetType = UNSET
    validation_threshold: Ratio | UnsetType = UNSET
    evaluation_window: Duration | UnsetType = UNSET
    batch_size: PositiveInt | UnsetType = UNSET
    ensemble_models: list[str] | UnsetType = UNSET


# --- app, server, security, performance (service-wide settings) ----------------------------

Port = Annotated[int, Meta(ge=1, le=65535, description="TCP port (1 .. 65535)")]
Seconds = Annotated[float, Meta(ge=0, description="Seconds")]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class App(Struct, kw_only=True):
    """The service's identity and logging."""

    name: str | UnsetType = UNSET
    version: str | UnsetType = UNSET
    debug: bool | UnsetType = UNSET
    log_level: LogLevel | UnsetType = UNSET
    timezone: str | UnsetType = UNSET


class Cors(Struct, kw_only=True):
    """Cross-origin requests: the origins allowed to call the service."""

    allowed_origins: list[str] | UnsetType = UNSET
    allow_credentials: bool | UnsetType = UNSET


class Server(Struct, kw_only=True):
    """The HTTP server: bind address, port, timeouts, CORS (open: services add more,
    ``tls`` for instance; the keys below are typed)."""

    open_section: ClassVar[bool] = True

    host: str | UnsetType = UNSET
    port: Port | UnsetType = UNSET
    https_only: bool | UnsetType = UNSET
    request_timeout_seconds: Seconds | UnsetType = UNSET
    keepalive_timeout_seconds: Seconds | UnsetType = UNSET
    cors: Cors | UnsetType = UNSET


class Encryption(Struct, kw_only=True):
    """Encryption at rest; the key comes from an environment variable."""

    algorithm: str | UnsetType = UNSET
    key: str | UnsetType = UNSET


class PasswordPolicy(Struct, kw_only=True):
    """Password rules (the security rules require at least 12 characters)."""

    min_length: PositiveInt | UnsetType = UNSET
    require_uppercase: bool | UnsetType = UNSET
    require_digits: bool | UnsetType = UNSET
    require_special_chars: bool | UnsetType = UNSET
    max_age_days: PositiveInt | UnsetType = UNSET


class Jwt(Struct, kw_only=True):
    """Token signing; the key comes from an environment variable."""

    algorithm: str | UnsetType = UNSET
    signing_key: str | UnsetType = UNSET
    access_token_ttl: Duration | UnsetType = UNSET
    refresh_token_ttl: Duration | UnsetType = UNSET


class RateLimiting(Struct, kw_only=True):
    """Per-client request limits."""

    enabled: bool | UnsetType = UNSET
    requests_per_minute: PositiveInt | UnsetType = UNSET


class Security(Struct, kw_only=True):
    """Encryption, passwords, tokens, third-party API keys and rate limits (open:
    services add more, ``password_hashing`` for instance; the keys below are typed)."""

    open_section: ClassVar[bool] = True

    encryption: Encryption | UnsetType = UNSET
    password_policy: PasswordPolicy | UnsetType = UNSET
    jwt: Jwt | UnsetType = UNSET
    api_keys: dict[str, str] | UnsetType = UNSET
    rate_limiting: RateLimiting | UnsetType = UNSET


class ConnectionPool(Struct, kw_only=True):
    """Database/service connection pool bounds."""

    min_size: NonNegativeInt | UnsetType = UNSET
    max_size: PositiveInt | UnsetType = UNSET
    pool_timeout_seconds: Seconds | UnsetType = UNSET
    max_idle_seconds: Seconds | UnsetType = UNSET


class Performance(Struct, kw_only=True):
    """Workers, batching, resource limits and pooling."""

    worker_threads: PositiveInt | UnsetType = UNSET
    batch_size: PositiveInt | UnsetType = UNSET
    processing_mode: Literal["streaming", "batch", "hybrid"] | UnsetType = UNSET
    prioritize_premium_users: bool | UnsetType = UNSET
    memory_limit: Size | UnsetType = UNSET
    cpu_limit: Annotated[float, Meta(gt=0, description="CPU cores")] | UnsetType = UNSET
    connection_pool: ConnectionPool | UnsetType = UNSET


class ConfigManagement(Struct, kw_only=True):
    """Settings cfgcore itself reads from the configuration."""

    reload_debounce_ms: PositiveInt | UnsetType = UNSET
    audit_log: str | None | UnsetType = UNSET


# --- regional compliance (set by the geographic profiles) ----------------------------------


class DataResidency(Struct, kw_only=True):
    """Where user data may be stored."""

    region: str | UnsetType = UNSET
    allowed_regions: list[str] | UnsetType = UNSET


class CcpaCompliance(Struct, kw_only=True):
    """California (US profile): opt-out of sale and deletion requests."""

    enabled: bool | UnsetType = UNSET
    do_not_sell_opt_out: bool | UnsetType = UNSET
    data_deletion_requests: bool | UnsetType = UNSET


class PdpaCompliance(Struct, kw_only=True):
    """Asia-Pacific (APAC profile): consent and cross-border transfer review."""

    enabled: bool | UnsetType = UNSET
    consent_required: bool | UnsetType = UNSET
    cross_border_transfer_review: bool | UnsetType = UNSET


class ConfigSchema(Struct, kw_only=True):
    """A cfgcore configuration tree (known sections; other top-level sections are allowed)."""

    open_section: ClassVar[bool] = True
    environment: str | UnsetType = UNSET
    geographic_profile: str | UnsetType = UNSET
    debug: bool | UnsetType = UNSET
    app: App | UnsetType = UNSET
    server: Server | UnsetType = UNSET
    security: Security | UnsetType = UNSET
    performance: Performance | UnsetType = UNSET
    config_management: ConfigManagement | UnsetType = UNSET
    data_residency: DataResidency | UnsetType = UNSET
    ccpa_compliance: CcpaCompliance | UnsetType = UNSET
    pdpa_compliance: PdpaCompliance | UnsetType = UNSET
    music_streaming: MusicStreaming | UnsetType = UNSET
    user_segments: UserSegments | UnsetType = UNSET
    recommendation_engine: RecommendationEngine | UnsetType = UNSET
    gdpr_compliance: GdprCompliance | UnsetType = UNSET
    caching_layers: CachingLayers | UnsetType = UNSET
    auto_scaling: AutoScaling | UnsetType = UNSET
    health_monitoring: HealthMonitoring | UnsetType = UNSET
    data_sources: DataSources | UnsetType = UNSET
    elasticsearch_cluster: ElasticsearchCluster | UnsetType = UNSET
    alerts: list[Alert] | UnsetType = UNSET
    user_limits: UserLimits | UnsetType = UNSET
    anomaly_detection: AnomalyDetection | UnsetType = UNSET


def json_schema() -> dict[str, Any]:
    """The configuration schema as a JSON Schema (draft 2020-12) document.

    Editors (VS Code YAML extension, JetBrains) use it for completion and inline
    checks: point ``# yaml-language-server: $schema=cfgcore.schema.json`` at the file
    written by ``cfgcore schema -o cfgcore.schema.json``.
    """
    doc = msgspec.json.schema(ConfigSchema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://cfgcore.invalid/schema/v{SCHEMA_VERSION}/config.json",
        "title": "cfgcore configuration",
        **doc,
    }


def json_schema_text() -> str:
    """:func:`json_schema` serialised as indented JSON with a trailing newline."""
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
