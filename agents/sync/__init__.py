"""Cross-device sync: pure domain rules (HLC, watchlist OR-Set, progress LWW register, device
presence, remote command validation). No I/O here, and time is always passed in; agents decode,
call these functions and publish what they return."""
