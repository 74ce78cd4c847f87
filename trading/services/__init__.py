"""The trading app's write services (the only code that changes trading state).

Grouped by subject: `marketdata` (instruments, datasets, imports), `strategies` (strategies and
immutable versions), `simulations` (create, dispatch, execute, cancel, re-run, sweep),
`analyses` (fanned-out sweeps, walk-forward, Monte Carlo), `idempotency` (Idempotency-Key
replay), `events` (the sequenced simulation event log).
"""
