"""Tests of the API edge: response cache, circuit breakers, metrics and health."""
