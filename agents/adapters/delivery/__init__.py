"""How the workers reach devices: one interface (base.py), two ways (fanout.py, pubnub.py), opened
once per worker as the resource `REALTIME_SINK` (sink.py): sync's delivery agent and command
router, and the notifications fan-out, send through it."""
