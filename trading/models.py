"""Market data, strategies, simulations and analyses: the trading app's durable state.

Instruments and datasets belong to an organisation, or to the platform when ``organization`` is
NULL (the demo data everyone may read and nobody may change through the API). Bars are stored one
row per (dataset, instrument, ts); on PostgreSQL with TimescaleDB the table is a hypertable (see
migration 0002). A simulation points at one immutable `StrategyVersion` and one `Dataset`, moves
through ``queued → running → succeeded | failed | cancelled`` and keeps its results compactly:
metrics as JSON, trades as rows (unique per simulation and index, so a re-delivered task cannot
duplicate them) and the equity curve and fills as zlib-compressed numpy arrays.
`SimulationEvent` is the durable, per-simulation sequenced event log the WebSocket mirrors.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organization


class AssetClass(models.TextChoices):
    EQUITY = "equity", "Equity"
    ETF = "etf", "ETF"
    CRYPTO = "crypto", "Crypto"
    FX = "fx", "FX"
    FUTURE = "future", "Future"
    INDEX = "index", "Index"
    OTHER = "other", "Other"


class Calendar(models.TextChoices):
    ALWAYS = "24/7", "24/7"
    EXCHANGE = "exchange", "Exchange sessions"


class Instrument(models.Model):
    """A tradable symbol; platform-wide (demo, read-only) when ``organization`` is NULL."""

    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="instruments")
    symbol = models.CharField(max_length=40)
    asset_class = models.CharField(max_length=16, choices=AssetClass.choices,
                                   default=AssetClass.EQUITY)
    exchange = models.CharField(max_length=40, blank=True)
    currency = models.CharField(max_length=10, default="USD")
    calendar = models.CharField(max_length=10, choices=Calendar.choices, default=Calendar.EXCHANGE)
    tick_size = models.DecimalField(max_digits=20, decimal_places=10, default="0.01")
    lot_size = models.DecimalField(max_digits=20, decimal_places=10, default="1")
    sector = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["symbol", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "symbol"],
                                    name="trading_instrument_org_symbol_unique"),
            # NULLs are distinct in a unique index, so platform symbols need their own.
            models.UniqueConstraint(fields=["symbol"], condition=Q(organization__isnull=True),
                                    name="trading_instrument_platform_symbol_unique"),
            models.CheckConstraint(condition=Q(tick_size__gt=0) & Q(lot_size__gt=0),
                                   name="trading_instrument_sizes_positive"),
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def is_platform(self) -> bool:
        return self.organization_id is None


class DatasetSource(models.TextChoices):
    UPLOAD = "upload", "Uploaded file"
    SYNTHETIC = "synthetic", "Synthetic generator"
    DEMO = "demo", "Platform demo data"


class Dataset(models.Model):
    """A named set of bars for one or more instruments at one bar interval."""

    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="datasets")
    name = models.CharField(max_length=120)
    instruments = models.ManyToManyField(Instrument, related_name="datasets")
    bar_seconds = models.PositiveIntegerField(help_text="The bar interval in seconds.")
    rows = models.BigIntegerField(default=0)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=DatasetSource.choices)
    # Provenance: file name and validation report of an import, generator and seed of synthetic data.
    source_detail = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"],
                                    name="trading_dataset_org_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_platform(self) -> bool:
        return self.organization_id is None


class Bar(models.Model):
    """One OHLCV bar. Written in bulk (COPY on PostgreSQL) and never updated.

    The foreign keys have no database constraint: a per-row constraint check would dominate a
    million-row COPY. Bars are only written by `trading.marketdata.bars_bulk_load` with the ids
    of the dataset and instruments it has just saved in the same transaction, and deleted with
    their dataset (Django's cascade).
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="bars",
                                db_index=False, db_constraint=False)
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="+",
                                   db_index=False, db_constraint=False)
    ts = models.DateTimeField()
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.FloatField()

    class Meta:
        ordering = ["dataset_id", "instrument_id", "ts"]
        constraints = [
            # Also the index every bar query uses (dataset, instrument, time range).
            models.UniqueConstraint(fields=["dataset", "instrument", "ts"],
                                    name="trading_bar_dataset_instrument_ts_unique"),
        ]

    def __str__(self) -> str:
        return f"bar {self.instrument_id} {self.ts:%Y-%m-%d %H:%M:%S}"


class StrategyKind:
    RULES = "rules"


class Strategy(models.Model):
    """A named strategy of an organisation; its content lives in immutable versions."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="strategies")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=60, help_text='An engine strategy type, or "rules".')
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"],
                                    name="trading_strategy_org_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class ImmutableError(Exception):
    """A strategy version was about to be changed after it was saved."""


class StrategyVersion(models.Model):
    """One frozen configuration of a strategy. Never updated: a change is a new version, so a
    simulation always says exactly what ran."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    params = models.JSONField(default=dict, blank=True)
    universe = models.JSONField(default=list, blank=True)  # symbols; [] = the whole dataset
    sizing = models.JSONField(default=dict, blank=True)  # {"mode", "value"}
    costs = models.JSONField(default=dict, blank=True)  # {"commission_bps", "slippage_bps", ...}
    rules_text = models.TextField(blank=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["strategy_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["strategy", "number"],
                                    name="trading_strategyversion_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy.name} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.pop("_allow_update", False):
            raise ImmutableError("A strategy version is immutable; create a new version.")
        super().save(*args, **kwargs)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Simulation(models.Model):
    """One backtest run of a strategy version on a dataset: a state machine with attempts and a
    heartbeat. The database row, not the broker, is the source of truth."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="simulations")
    strategy_version = models.ForeignKey(StrategyVersion, on_delete=models.PROTECT,
                                         related_name="simulations")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="simulations")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    # Set when the fair-share dispatcher hands the run to the queue (see services).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The Celery task id of the current attempt (a re-delivered message keeps it) and a token
    # unique to the attempt, which a superseded attempt sees change and stops.
    task_id = models.CharField(max_length=64, blank=True)
    attempt_token = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    size = models.BigIntegerField(default=0, help_text="bars × symbols")
    error = models.TextField(blank=True)
    metrics = models.JSONField(null=True, blank=True)
    result_hash = models.CharField(max_length=64, blank=True)
    n_trades = models.PositiveIntegerField(default=0)
    last_seq = models.PositiveIntegerField(default=0)
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="reruns")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "status", "created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]

    def __str__(self) -> str:
        return f"simulation {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class SimulationResult(models.Model):
    """The bulky part of a finished simulation, written once (one-to-one)."""

    simulation = models.OneToOneField(Simulation, on_delete=models.CASCADE, related_name="result")
    n_points = models.PositiveIntegerField()
    # zlib(delta-encoded int64 ns timestamps) and zlib(float64 equity), both of n_points.
    timestamps_blob = models.BinaryField()
    equity_blob = models.BinaryField()
    # zlib(float64 fills ledger, shape (n_fills, n_columns)) and the symbols it indexes.
    fills_blob = models.BinaryField()
    fills_shape = models.JSONField(default=list)
    symbols = models.JSONField(default=list)
    summary = models.JSONField(default=dict)  # final equity, cash, positions, fingerprint
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"result of simulation {self.simulation_id}"


class SimulationTrade(models.Model):
    simulation = models.ForeignKey(Simulation, on_delete=models.CASCADE, related_name="trades",
                                   db_index=False)
    index = models.PositiveIntegerField()
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=5)
    entry_time = models.DateTimeField()
    entry_price = models.FloatField()
    exit_time = models.DateTimeField(null=True, blank=True)
    exit_price = models.FloatField(null=True, blank=True)
    quantity = models.FloatField()
    pnl = models.FloatField()
    fees = models.FloatField()

    class Meta:
        ordering = ["simulation_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["simulation", "index"],
                                    name="trading_simulationtrade_index_unique"),
        ]

    def __str__(self) -> str:
        return f"trade {self.index} of simulation {self.simulation_id}"


class StreamEvent(models.Model):
    """One entry of a durable event log: ``seq`` numbers its stream from 1. The WebSocket only
    mirrors these rows; clients resync from them (``events/?since=<seq>``)."""

    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True


class SimulationEvent(StreamEvent):
    """The durable event log of a simulation."""

    simulation = models.ForeignKey(Simulation, on_delete=models.CASCADE, related_name="events",
                                   db_index=False)

    class Meta:
        ordering = ["simulation_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["simulation", "seq"],
                                    name="trading_simulationevent_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} of simulation {self.simulation_id}"


class IdempotencyKey(models.Model):
    """A request made with an ``Idempotency-Key`` header and the response it got (Stripe
    semantics). The unique constraint is what makes concurrent duplicates create one object."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=60)  # which endpoint, e.g. "simulation.create"
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "key"],
                                    name="trading_idempotencykey_org_key_unique"),
        ]

    def __str__(self) -> str:
        return f"idempotency key {self.key[:16]}"


class AnalysisKind(models.TextChoices):
    SWEEP = "sweep", "Parameter sweep"
    WALK_FORWARD = "walk_forward", "Walk-forward"
    MONTE_CARLO = "monte_carlo", "Monte Carlo"


class Analysis(models.Model):
    """A job of many backtests fanned out over Celery: one child per parameter set, window or
    batch, then one aggregate step."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="analyses")
    kind = models.CharField(max_length=16, choices=AnalysisKind.choices)
    strategy_version = models.ForeignKey(StrategyVersion, null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="analyses")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="analyses")
    simulation = models.ForeignKey(Simulation, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="analyses")
    spec = models.JSONField(default=dict)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    n_children = models.PositiveIntegerField(default=0)
    n_done = models.PositiveIntegerField(default=0)
    n_failed = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} analysis {self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        return (self.n_done + self.n_failed) / self.n_children if self.n_children else 0.0


class AnalysisChild(models.Model):
    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="children",
                                 db_index=False)
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=RunStatus.choices)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["analysis_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "index"],
                                    name="trading_analysischild_index_unique"),
        ]

    def __str__(self) -> str:
        return f"child {self.index} of analysis {self.analysis_id}"


# --- live and paper trading -----------------------------------------------------------------
# A `BrokerAccount` holds an organisation's broker credentials, encrypted at rest
# (trading.crypto); a `Deployment` runs one strategy version on one account and keeps the
# live engine's saved state between steps; `LiveOrder` and `LiveFill` are the durable books of
# its orders (unique per client order id, so a replayed step cannot duplicate one) and fills
# (unique per broker fill id); `DeploymentEvent` is its sequenced event log. The engine works
# in floats; quantities, prices and money are stored as ``Decimal(str(x))``.

class BrokerKind(models.TextChoices):
    PAPER = "paper", "Paper (simulated)"
    CCXT = "ccxt", "Crypto exchange (ccxt)"
    IB = "ib", "Interactive Brokers"
    FIX = "fix", "FIX"


class AccountMode(models.TextChoices):
    PAPER = "paper", "Paper"
    LIVE = "live", "Live"


class BrokerAccount(models.Model):
    """An organisation's account at a broker; the credentials are a Fernet token, never shown."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="broker_accounts")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=8, choices=BrokerKind.choices, default=BrokerKind.PAPER)
    mode = models.CharField(max_length=8, choices=AccountMode.choices, default=AccountMode.PAPER)
    credentials_encrypted = models.TextField(blank=True)
    credentials_hint = models.CharField(max_length=8, blank=True)  # last 4 characters
    options = models.JSONField(default=dict, blank=True)  # non-secret: exchange id, host...
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"],
                                    name="trading_brokeraccount_org_name_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.mode})"

    @property
    def masked_credentials(self) -> str:
        return f"••••{self.credentials_hint}" if self.credentials_encrypted else ""


class DeploymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"
    HALTED = "halted", "Halted"


class Deployment(models.Model):
    """One strategy version trading on one broker account: ``pending → running ⇄ paused →
    stopped``, or ``halted`` by the risk rulebook (resumed only by an admin)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="deployments")
    name = models.CharField(max_length=80, blank=True)
    strategy_version = models.ForeignKey(StrategyVersion, on_delete=models.PROTECT,
                                         related_name="deployments")
    broker_account = models.ForeignKey(BrokerAccount, on_delete=models.PROTECT,
                                       related_name="deployments")
    symbols = models.JSONField(default=list)
    config = models.JSONField(default=dict, blank=True)  # cash, bar_seconds, seed, lookback
    status = models.CharField(max_length=8, choices=DeploymentStatus.choices,
                              default=DeploymentStatus.PENDING)
    halt_reason = models.TextField(blank=True)
    # JSON text rather than JSONField: the engine's states may hold NaN (an unset price), which
    # Python's json round-trips and a database JSON type refuses.
    state = models.TextField(blank=True)  # live_engine.DeploymentState.to_json()
    broker_state = models.TextField(blank=True)  # json of PaperBroker.state()
    feed_anchor_ns = models.BigIntegerField(null=True, blank=True)
    last_bar_ts = models.BigIntegerField(null=True, blank=True)
    equity = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    cash = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "status", "created_at"]),
                   models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"deployment {self.pk} ({self.status})"


class LiveOrder(models.Model):
    """A deployment's order as the order manager last saw it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="orders")
    client_order_id = models.CharField(max_length=64, unique=True)
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(max_digits=30, decimal_places=12)
    order_type = models.CharField(max_length=12, default="market")
    limit_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    status = models.CharField(max_length=16, default="new")
    filled_quantity = models.DecimalField(max_digits=30, decimal_places=12, default=0)
    average_price = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    broker_order_id = models.CharField(max_length=64, blank=True)
    leg = models.CharField(max_length=80, blank=True)
    reason = models.TextField(blank=True)
    decision_ts = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-decision_ts", "-id"]
        indexes = [models.Index(fields=["organization", "deployment", "status"])]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} ({self.status})"


class LiveFill(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="fills")
    fill_id = models.CharField(max_length=96)  # the broker's; unique within one account
    client_order_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=40)
    side = models.CharField(max_length=4)
    quantity = models.DecimalField(max_digits=30, decimal_places=12)
    price = models.DecimalField(max_digits=30, decimal_places=12)
    fee = models.DecimalField(max_digits=30, decimal_places=12, default=0)
    fee_currency = models.CharField(max_length=12, blank=True)
    ts = models.BigIntegerField()

    class Meta:
        ordering = ["-ts", "-id"]
        indexes = [models.Index(fields=["organization", "deployment", "ts"])]
        constraints = [models.UniqueConstraint(fields=["deployment", "fill_id"],
                                               name="trading_livefill_fill_unique")]

    def __str__(self) -> str:
        return f"fill {self.fill_id}: {self.side} {self.quantity} {self.symbol} @ {self.price}"


class DeploymentEvent(StreamEvent):
    """The durable event log of a deployment."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events",
                                   db_index=False)

    class Meta:
        ordering = ["deployment_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "seq"],
                                    name="trading_deploymentevent_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} of deployment {self.deployment_id}"
