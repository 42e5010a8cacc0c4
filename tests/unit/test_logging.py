"""Level specs, correlation ids and the real output of init_logging (JSON and pretty)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

import pytest
from loguru import logger

from core.observability import correlation
from core.observability.levels import LevelSpec, level_number, parse_level_spec
from core.observability.logging import _STDLIB_ROUTED, _InterceptHandler, init_logging

# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    root_level = root.level
    # pytest's own capture handlers are added and removed per phase: restore only the others.
    root_handlers = [h for h in root.handlers if not type(h).__module__.startswith("_pytest")]
    routed = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate)
        for name in _STDLIB_ROUTED
    }
    yield
    logger.remove()
    # remove() keeps the patcher and extra set by configure(): reset them as well.
    logger.configure(patcher=lambda record: None, extra={})
    for handler in root.handlers[:]:
        if isinstance(handler, _InterceptHandler):
            root.removeHandler(handler)
    for handler in root_handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(root_level)
    for name, (handlers, propagate) in routed.items():
        std = logging.getLogger(name)
        std.handlers = handlers
        std.propagate = propagate


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    # json.loads on each line also asserts the sink writes exactly one object per line.
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def messages(stream: io.StringIO) -> list[str]:
    return [line["msg"] for line in json_lines(stream) if "msg" in line]


def emitter(module: str) -> Callable[[str, str], None]:
    """A log call made from code whose __name__ is `module`, as loguru sees it in real modules."""
    namespace: dict[str, Any] = {"__name__": module, "logger": logger}
    exec("def emit(level, message):\n    logger.log(level, message)\n", namespace)
    return namespace["emit"]


def json_logging(level: str = "info", process: str | None = None) -> io.StringIO:
    stream = io.StringIO()
    init_logging(level, "json", stream, process)
    return stream


# --- levels -------------------------------------------------------------------------------


def test_parse_level_spec_default_and_modules() -> None:
    spec = parse_level_spec("info,agents.sync=debug,aiokafka=warning")

    assert spec.default == 20
    assert dict(spec.modules) == {"agents.sync": 10, "aiokafka": 30}
    # Longest prefix first, so the most specific rule is tried first.
    assert [prefix for prefix, _ in spec.modules] == ["agents.sync", "aiokafka"]


def test_spec_without_default_keeps_info() -> None:
    spec = parse_level_spec("agents=debug")

    assert spec.default == level_number("info")
    assert spec.level_for("gateway") == 20


def test_spec_tolerates_case_spaces_and_empty_parts() -> None:
    spec = parse_level_spec(" WARN , , agents.sync = DEBUG ,")

    assert spec.default == 30
    assert spec.modules == (("agents.sync", 10),)


def test_last_default_wins() -> None:
    assert parse_level_spec("debug,error").default == 40


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("agents.sync", 10),  # exact
        ("agents.sync.worker", 10),  # dotted child
        ("agents.syncx", 30),  # not a dotted child of agents.sync: falls back to agents
        ("agents", 30),
        ("agents.titles.store", 30),
        ("agentsx", 40),  # not a child of agents either: the default
        ("gateway", 40),
        ("", 40),
    ],
)
def test_level_for_longest_dotted_prefix_wins(module: str, expected: int) -> None:
    spec = parse_level_spec("error,agents=warning,agents.sync=debug")

    assert spec.level_for(module) == expected


def test_level_for_does_not_depend_on_spec_order() -> None:
    forward = parse_level_spec("agents=warning,agents.sync=debug")
    backward = parse_level_spec("agents.sync=debug,agents=warning")

    assert forward == backward
    assert backward.level_for("agents.sync.x") == 10


def test_level_spec_by_hand_uses_given_order() -> None:
    spec = LevelSpec(default=20, modules=(("a.b", 10), ("a", 40)))

    assert spec.level_for("a.b.c") == 10
    assert spec.level_for("a.c") == 40


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("trace", 5),
        ("debug", 10),
        ("info", 20),
        ("success", 25),
        ("warn", 30),
        ("warning", 30),
        ("error", 40),
        ("critical", 50),
        ("off", 100),
        (" Info ", 20),
    ],
)
def test_level_numbers(name: str, number: int) -> None:
    assert level_number(name) == number


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("info,x=loud", "unknown level 'loud'"),
        ("verbose", "unknown level 'verbose'"),
        ("info,agents=", "unknown level ''"),
        ("info,=debug", "module name missing"),
        ("info, =debug", "module name missing"),
    ],
)
def test_bad_specs_are_rejected(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_level_spec(spec)


def test_unknown_level_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as excinfo:
        level_number("loud")

    assert "debug" in str(excinfo.value)
    assert "warning" in str(excinfo.value)


# --- correlation ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "candidate",
    ["req-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "a.b:c/d+e=f_g", "x" * 128, "A"],
)
def test_accept_keeps_sane_client_ids(candidate: str) -> None:
    assert correlation.accept(candidate) == candidate


@pytest.mark.parametrize(
    "candidate",
    [
        None,
        "",
        "x" * 129,
        "has space",
        "new\nline",
        "trailing-newline\n",
        "x" * 128 + "\n",
        "<script>",
        "ид-запроса",
        "tab\there",
    ],
)
def test_accept_replaces_junk_with_a_fresh_id(candidate: str | None) -> None:
    replaced = correlation.accept(candidate)

    assert replaced != candidate
    assert len(replaced) == 32
    int(replaced, 16)  # a uuid4 hex


def test_new_ids_are_unique_hex() -> None:
    ids = {correlation.new_id() for _ in range(100)}

    assert len(ids) == 100
    assert all(uuid.UUID(hex=value).version == 4 for value in ids)


def test_bound_sets_and_restores_nested_ids() -> None:
    assert correlation.current() is None
    with correlation.bound("outer"):
        assert correlation.current() == "outer"
        with correlation.bound(None):
            assert correlation.current() is None
        with correlation.bound("inner"):
            assert correlation.current() == "inner"
        assert correlation.current() == "outer"
    assert correlation.current() is None


def test_bound_restores_after_an_exception() -> None:
    with pytest.raises(RuntimeError), correlation.bound("doomed"):
        raise RuntimeError("boom")

    assert correlation.current() is None


def test_set_current_and_reset() -> None:
    token = correlation.set_current("manual")
    try:
        assert correlation.current() == "manual"
    finally:
        correlation.reset(token)
    assert correlation.current() is None


# --- JSON lines ---------------------------------------------------------------------------


def test_json_line_has_the_documented_fields() -> None:
    stream = json_logging()

    logger.info("hello {}", "world")

    [line] = json_lines(stream)
    assert line["level"] == "info"
    assert line["logger"] == __name__
    assert line["msg"] == "hello world"
    assert "correlation_id" not in line
    assert "error" not in line
    ts = datetime.fromisoformat(line["ts"])
    assert ts.utcoffset() == timedelta(0)
    assert set(line) == {"ts", "level", "logger", "msg"}


def test_process_and_bound_fields_appear_on_lines() -> None:
    stream = json_logging(process="gateway")

    logger.bind(topic="mgw.content", partition=3, path=PurePosixPath("/srv/x")).warning("lagging")

    [line] = json_lines(stream)
    assert line["process"] == "gateway"
    assert line["topic"] == "mgw.content"
    assert line["partition"] == 3
    assert line["path"] == "/srv/x"  # not JSON-native: written as text
    assert line["level"] == "warning"


def test_bound_fields_cannot_overwrite_core_fields() -> None:
    stream = json_logging()

    logger.bind(msg="forged", level="critical", ts="yesterday").info("real")

    [line] = json_lines(stream)
    assert line["msg"] == "real"
    assert line["level"] == "info"
    assert line["ts"] != "yesterday"


def test_values_orjson_cannot_encode_do_not_lose_the_line() -> None:
    stream = json_logging()

    logger.bind(big=2**70, by_pair={(1, 2): "x"}, ok=1).info("still here")

    [line] = json_lines(stream)
    assert line["msg"] == "still here"
    assert str(2**70) in str(line["big"])
    assert "(1, 2)" in str(line["by_pair"])
    assert line["ok"] == 1


def test_reinit_replaces_the_sink() -> None:
    first = json_logging()
    second = json_logging()

    logger.info("once")

    assert first.getvalue() == ""
    assert messages(second) == ["once"]


def test_bad_level_spec_fails_init() -> None:
    with pytest.raises(ValueError, match="loud"):
        init_logging("info,x=loud", "json", io.StringIO())


# --- per-module filtering -----------------------------------------------------------------


def test_debug_shown_only_for_the_module_asking_for_it() -> None:
    stream = json_logging("info,agents.sync=debug")

    emitter("agents.sync")("DEBUG", "sync debug")
    emitter("agents.sync.worker")("DEBUG", "child debug")
    emitter("agents.catalog")("DEBUG", "catalog debug")
    emitter("agents.syncx")("DEBUG", "lookalike debug")
    emitter("agents.catalog")("INFO", "catalog info")
    emitter("agents.sync")("TRACE", "sync trace")

    lines = json_lines(stream)
    assert [line["msg"] for line in lines] == ["sync debug", "child debug", "catalog info"]
    assert [line["logger"] for line in lines] == [
        "agents.sync",
        "agents.sync.worker",
        "agents.catalog",
    ]
    assert lines[0]["level"] == "debug"


def test_bound_logger_name_is_filtered_like_a_module() -> None:
    stream = json_logging("warning,agents.sync=debug")

    logger.bind(logger="agents.sync").debug("named debug")
    logger.debug("test module debug")

    assert messages(stream) == ["named debug"]


def test_off_silences_a_module() -> None:
    stream = json_logging("info,noisy=off")

    emitter("noisy.lib")("CRITICAL", "shouted")
    emitter("quiet")("INFO", "spoken")

    assert messages(stream) == ["spoken"]


# --- standard-library logging -------------------------------------------------------------


def test_stdlib_logger_lands_in_the_sink_with_its_name() -> None:
    stream = json_logging()

    logging.getLogger("aiokafka.consumer").warning("lag is %d", 5)
    logging.getLogger("faust").info("worker ready")
    logging.getLogger("uvicorn.error").error("bind failed")

    lines = json_lines(stream)
    assert [(line["logger"], line["level"], line["msg"]) for line in lines] == [
        ("aiokafka.consumer", "warning", "lag is 5"),
        ("faust", "info", "worker ready"),
        ("uvicorn.error", "error", "bind failed"),
    ]


def test_faust_idle_partition_monitor_is_a_warning_and_real_faust_errors_stay_errors() -> None:
    from faust.transport.drivers import aiokafka as driver
    from mode.utils.logging import CompositeLogger

    stream = json_logging()
    # Faust's own logger, as its consumer thread logs them (with its "[^---...]:" prefix).
    log = CompositeLogger(logging.getLogger(driver.__name__))
    log.error(driver.SLOW_PROCESSING_NO_FETCH_SINCE_START, "TP(topic='t', partition=3)", "5m")
    log.error(driver.SLOW_PROCESSING_NO_RECENT_COMMIT, "TP(topic='t', partition=1)", "2m")
    log.error("No active partitions for TP(topic='t', partition=0)")
    log.error("Committing raised exception: %r", "KafkaError")

    lines = json_lines(stream)
    assert [line["level"] for line in lines] == ["warning", "warning", "warning", "error"]
    assert "partition=3" in lines[0]["msg"] and "KafkaError" in lines[3]["msg"]


def test_stdlib_records_follow_module_levels() -> None:
    stream = json_logging("info,aiokafka=error,faust=warning")

    logging.getLogger("aiokafka.consumer").warning("dropped warning")
    logging.getLogger("aiokafka.consumer").error("kept error")
    logging.getLogger("faust.worker").info("dropped info")
    logging.getLogger("faust.worker").warning("kept warning")
    logging.getLogger("someapp").info("kept info")
    logging.getLogger("someapp").debug("dropped debug")

    assert messages(stream) == ["kept error", "kept warning", "kept info"]


def test_stdlib_drops_records_below_every_configured_level() -> None:
    json_logging("info,aiokafka=error")
    assert not logging.getLogger("anything").isEnabledFor(logging.DEBUG)

    json_logging("info,agents.sync=debug")
    assert logging.getLogger("anything").isEnabledFor(logging.DEBUG)


def test_library_handlers_are_replaced_by_the_sink() -> None:
    # uvicorn installs its own non-propagating handlers; they would bypass the JSON sink.
    private = io.StringIO()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.StreamHandler(private))
    access.propagate = False
    stream = json_logging("info")

    access.info('"GET /health HTTP/1.1" 200')

    assert private.getvalue() == ""
    [line] = json_lines(stream)
    assert line["logger"] == "uvicorn.access"


# --- correlation ids on lines -------------------------------------------------------------


def test_bound_correlation_id_is_on_loguru_and_stdlib_lines() -> None:
    stream = json_logging()

    logger.info("before")
    with correlation.bound("req-42"):
        logger.info("inside")
        logging.getLogger("aiokafka.producer").warning("from stdlib")
        logging.getLogger("uvicorn.error").info("from uvicorn")
    logger.info("after")

    lines = {line["msg"]: line for line in json_lines(stream)}
    assert lines["inside"]["correlation_id"] == "req-42"
    assert lines["from stdlib"]["correlation_id"] == "req-42"
    assert lines["from uvicorn"]["correlation_id"] == "req-42"
    assert "correlation_id" not in lines["before"]
    assert "correlation_id" not in lines["after"]


def test_explicit_bind_overrides_the_context() -> None:
    stream = json_logging()

    with correlation.bound("from-context"):
        logger.bind(correlation_id="explicit").info("bound")
        logger.info("plain")

    assert [line["correlation_id"] for line in json_lines(stream)] == ["explicit", "from-context"]


async def test_concurrent_tasks_keep_their_own_ids() -> None:
    stream = json_logging()

    async def handle(cid: str) -> None:
        with correlation.bound(cid):
            for step in range(3):
                logger.info("{} step {}", cid, step)
                await asyncio.sleep(0)

    await asyncio.gather(handle("task-a"), handle("task-b"))

    lines = json_lines(stream)
    assert len(lines) == 6
    # Interleaved by the event loop, yet every line carries its own task's id.
    assert {line["msg"].split()[0] for line in lines[:2]} == {"task-a", "task-b"}
    for line in lines:
        assert line["correlation_id"] == line["msg"].split()[0]


# --- exceptions ---------------------------------------------------------------------------


def _fail() -> None:
    raise ZeroDivisionError("division by zero")


def test_exception_gives_error_field_and_traceback_line() -> None:
    stream = json_logging()

    try:
        _fail()
    except ZeroDivisionError:
        with correlation.bound("req-err"):
            logger.exception("handler failed")

    main, trace = json_lines(stream)
    assert main["msg"] == "handler failed"
    assert main["level"] == "error"
    assert main["error"] == "ZeroDivisionError: division by zero"
    assert main["correlation_id"] == "req-err"
    assert set(trace) == {"traceback"}
    assert trace["traceback"].startswith("Traceback (most recent call last):")
    assert "in _fail" in trace["traceback"]
    assert trace["traceback"].rstrip().endswith("ZeroDivisionError: division by zero")


def test_stdlib_exception_is_reported_the_same_way() -> None:
    stream = json_logging()

    try:
        raise KeyError("missing")
    except KeyError:
        logging.getLogger("faust").exception("agent crashed")

    main, trace = json_lines(stream)
    assert main["logger"] == "faust"
    assert main["error"] == "KeyError: 'missing'"
    assert "KeyError" in trace["traceback"]


def test_exception_call_without_an_exception_adds_no_error() -> None:
    stream = json_logging()

    logger.exception("nothing raised")
    logging.getLogger("faust").error("nothing either", exc_info=True)

    lines = json_lines(stream)
    assert [line["msg"] for line in lines] == ["nothing raised", "nothing either"]
    assert all("error" not in line for line in lines)


# --- pretty format ------------------------------------------------------------------------


def test_pretty_line_has_message_short_id_and_fields() -> None:
    stream = io.StringIO()
    init_logging("info", "pretty", stream, process="worker")
    cid = "0123456789abcdef0123456789abcdef"

    with correlation.bound(cid):
        logger.bind(topic="mgw.content").info("pretty hello")

    [line] = stream.getvalue().splitlines()
    assert "pretty hello" in line
    assert "INFO" in line
    assert __name__ in line
    assert "[0123456789ab]" in line
    assert cid not in line
    assert "topic=mgw.content" in line
    assert "process=worker" in line
    assert "\x1b[" not in line  # no colour codes into a non-terminal
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_pretty_filters_and_routes_stdlib() -> None:
    stream = io.StringIO()
    init_logging("info,aiokafka=error", "pretty", stream)

    logging.getLogger("aiokafka.consumer").warning("hidden warning")
    logging.getLogger("uvicorn.error").info("uvicorn started")
    emitter("agents.sync")("DEBUG", "hidden debug")

    text = stream.getvalue()
    assert "uvicorn started" in text
    assert "uvicorn.error" in text
    assert "hidden" not in text
    assert "[" not in text  # no correlation id bound, so no label


def test_pretty_accepts_a_non_string_correlation_id() -> None:
    stream = io.StringIO()
    init_logging("info", "pretty", stream)
    cid = uuid.UUID("0123456789abcdef0123456789abcdef")

    logger.bind(correlation_id=cid).info("uuid id")

    assert f"[{str(cid)[:12]}]" in stream.getvalue()


def test_pretty_exception_includes_the_traceback() -> None:
    stream = io.StringIO()
    init_logging("info", "pretty", stream)

    try:
        _fail()
    except ZeroDivisionError:
        logger.exception("pretty failure")

    text = stream.getvalue()
    assert "pretty failure" in text
    assert "Traceback" in text
    assert "ZeroDivisionError" in text


@pytest.mark.parametrize("fmt", ["pretty", "json"])
def test_a_traceback_shows_no_values_of_locals(fmt: str) -> None:
    """A secret in a local (a token, a stream ticket) stays out of a logged traceback."""
    stream = io.StringIO()
    init_logging("info", fmt, stream)

    def redeem(ticket: str) -> None:
        # loguru's diagnose would annotate `ticket` on this line with its value.
        raise ValueError(f"cannot redeem a ticket of {len(ticket)} characters")

    secret = "tkt-" + "SECRET" * 3  # made at run time: no source line shows it
    try:
        redeem(secret)
    except ValueError:
        logger.exception("redeeming failed")
    written = stream.getvalue()
    assert "cannot redeem" in written and "redeem(" in written
    assert "SECRETSECRET" not in written
