"""The worker framework's Kafka adapter: the one place of agents/ that knows Faust and aiokafka.

The Faust app, its agents' batches and the worker process (app.py, worker.py), how their
consumers fetch (fetch_wait.py) and guard offsets (offset_guard.py), the worker's ops side
(ops.py), and the group-less readers a slice declares (broadcast.py). The gateway's side of the
seam, and the tools', is core/kafka/ (tests/unit/test_kafka_seam.py keeps both so).
"""
