"""How sync reaches devices: one interface (base.py), two ways (fanout.py, pubnub.py), chosen
from the settings (factory.py). The slice's delivery agent holds one per worker
(`REALTIME_SINK` in agents/sync/handlers.py)."""
