"""The built-in realtime fan-out of the gateway: Server-Sent Events fed by Redis pub/sub."""
