"""Structured logging on loguru, for every process.

One sink writes JSON lines (or a readable format); the standard-library loggers of Faust,
aiokafka and uvicorn are routed into it, and every line carries the correlation id.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC
from typing import Any, TextIO

import orjson
from loguru import logger

from core.observability import correlation
from core.observability.levels import LevelSpec, parse_level_spec

_STDLIB_ROUTED = (
    "faust",
    "mode",
    "aiokafka",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "kafka",
)
_PRETTY = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[logger]}</cyan> {extra[cid_label]}<level>{message}</level>{extra[fields]}"
)


# Faust's livelock monitor logs ERROR for every partition that saw no record, fetch or commit
# for a while: after a broker restart, dozens per idle partition, drowning real errors. An
# idle partition is normal here (lag and stuck agents have their own metrics and alerts), so
# these lines are warnings. Matched on the message templates of faust/transport/drivers/aiokafka.py.
_FAUST_IDLE_PARTITION = (
    "Aiokafka has not sent fetch request for",
    "Aiokafka has not received fetch response for",
    "Aiokafka stopped fetching from",
    "Broker stopped responding to fetch requests for",
    "Highwater not yet available for",
    "Stream has not started processing",
    "Stream stopped processing, or is slow for",
    "Has not committed",
    "No active partitions for",
)


def stdlib_level(record: logging.LogRecord) -> str | int:
    """The loguru level of a standard-library record (Faust's idle-partition noise demoted)."""
    if (
        record.levelno == logging.ERROR
        and record.name.startswith("faust")
        and any(marker in str(record.msg) for marker in _FAUST_IDLE_PARTITION)
    ):
        return "WARNING"
    try:
        return logger.level(record.levelname).name
    except ValueError:
        return record.levelno


class _InterceptHandler(logging.Handler):
    """Hands standard-library records to loguru, keeping their logger name."""

    def emit(self, record: logging.LogRecord) -> None:
        level = stdlib_level(record)
        logger.bind(logger=record.name).opt(exception=record.exc_info).log(
            level, record.getMessage()
        )


def _patch(record: Any) -> None:
    extra = record["extra"]
    extra.setdefault("logger", record["name"] or "root")
    if "correlation_id" not in extra:
        cid = correlation.current()
        if cid:
            extra["correlation_id"] = cid


def _has_exception(record: Any) -> bool:
    # `logger.exception()` or stdlib `exc_info=True` outside an `except` block records
    # (None, None, None): there is no error to report, only "NoneType: None" noise.
    exc = record["exception"]
    return exc is not None and exc.type is not None


def _dumps(line: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # orjson cannot encode some values even with `default` (ints beyond 64 bits, for one);
        # show those fields as text rather than lose the whole line.
        safe: dict[str, Any] = {}
        for key, value in line.items():
            try:
                orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
                safe[key] = value
            except TypeError:
                safe[key] = repr(value)
        return orjson.dumps(safe, default=str, option=orjson.OPT_NON_STR_KEYS)


def _json_line(record: Any) -> str:
    extra = dict(record["extra"])
    line: dict[str, Any] = {
        "ts": record["time"].astimezone(UTC).isoformat(timespec="microseconds"),
        "level": record["level"].name.lower(),
        "logger": extra.pop("logger", record["name"]),
        "msg": record["message"],
    }
    cid = extra.pop("correlation_id", None)
    if cid:
        line["correlation_id"] = cid
    for key in ("cid_label", "fields"):
        extra.pop(key, None)
    if extra:
        line.update({k: v for k, v in extra.items() if k not in line})
    if _has_exception(record):
        exc = record["exception"]
        line["error"] = f"{exc.type.__name__}: {exc.value}"
    return _dumps(line).decode()


def _make_filter(spec: LevelSpec):  # type: ignore[no-untyped-def]
    def accept(record: Any) -> bool:
        name = record["extra"].get("logger") or record["name"] or ""
        return record["level"].no >= spec.level_for(name)

    return accept


def _json_sink(stream: TextIO):  # type: ignore[no-untyped-def]
    def write(message: Any) -> None:
        stream.write(_json_line(message.record) + "\n")
        if _has_exception(message.record):
            exc = message.record["exception"]
            # The traceback goes on a line of its own so the main line stays one JSON object.
            text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
            stream.write(orjson.dumps({"traceback": text}).decode() + "\n")
        stream.flush()

    return write


def _pretty_patch(record: Any) -> None:
    _patch(record)
    extra = record["extra"]
    cid = extra.get("correlation_id")
    # str(): a bound id may be a UUID, and a TypeError here would reach the caller's log call.
    extra["cid_label"] = f"[{str(cid)[:12]}] " if cid else ""
    shown = {
        k: v
        for k, v in extra.items()
        if k not in {"logger", "correlation_id", "cid_label", "fields"}
    }
    extra["fields"] = (" " + " ".join(f"{k}={v}" for k, v in shown.items())) if shown else ""


def init_logging(
    level: str = "info",
    fmt: str = "json",
    stream: TextIO | None = None,
    process: str | None = None,
) -> None:
    """Configure loguru as the only sink and route standard-library logging into it."""
    spec = parse_level_spec(level)
    out = stream or sys.stderr
    logger.remove()
    # The handler's own level is the lowest any module logs at, so loguru drops a line below
    # it at the call (no record, no timestamp, no filter); the filter sorts out the rest.
    lowest = spec.lowest
    if fmt == "pretty":
        logger.configure(patcher=_pretty_patch, extra={"process": process} if process else {})
        # diagnose=False: loguru would print the value of every variable of a traceback's
        # frames, secrets and connection URLs among them (docs/AUTH.md, secrets).
        logger.add(
            out,
            format=_PRETTY,
            filter=_make_filter(spec),
            level=lowest,
            colorize=None,
            diagnose=False,
        )
    else:
        logger.configure(patcher=_patch, extra={"process": process} if process else {})
        logger.add(_json_sink(out), filter=_make_filter(spec), level=lowest, format="{message}")

    handler = _InterceptHandler()
    logging.basicConfig(handlers=[handler], level=0, force=True)
    for name in _STDLIB_ROUTED:
        std = logging.getLogger(name)
        std.handlers = []
        std.propagate = True
    # Let the stdlib drop records loguru would drop anyway (cheap for chatty libraries).
    logging.getLogger().setLevel(min(lowest, 50))
