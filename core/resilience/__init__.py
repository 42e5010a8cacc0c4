"""Staying up when a dependency is not: circuit breakers and Redis outage handling."""

from core.resilience.breaker import (
    THRESHOLDS,
    BreakerConfig,
    BreakerRegistry,
    CircuitBreaker,
    CircuitOpen,
    breakers,
)

__all__ = [
    "THRESHOLDS",
    "BreakerConfig",
    "BreakerRegistry",
    "CircuitBreaker",
    "CircuitOpen",
    "breakers",
]
