"""Market-data feeds for live and paper deployments (see docs/live.md).

`base` holds the `Feed` interface, the bounded `BarBuffer` and the clocks; `symbols` the
`BASE/QUOTE` convention; `simulated` the synthetic and replay feeds. The exchange feeds are
imported from their own modules (`ccxt_feed`, `ib_feed`) so that using one does not load the
other's client library.
"""

from .base import Bar, BarBuffer, Feed, Gap, ManualClock, SystemClock, to_barset
from .simulated import ReplayFeed, SyntheticFeed
from .symbols import normalise_symbol

__all__ = ["Bar", "BarBuffer", "Feed", "Gap", "ManualClock", "ReplayFeed", "SyntheticFeed",
           "SystemClock", "normalise_symbol", "to_barset"]
