"""How sync reaches devices: one interface (base.py), two ways (fanout.py, pubnub.py). The
slice's delivery agent opens one per worker (`REALTIME_SINK` in agents/sync/handlers.py)."""
