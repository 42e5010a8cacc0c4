"""`mgw ingest FILE` reads JSON lines as feeds write them: a file that opens with a UTF-8 byte
order mark (Excel, PowerShell, Notepad) had its first item rejected as "not JSON"."""

from __future__ import annotations

import codecs
from pathlib import Path

from cli.ingest import read_jsonl

LINE = b'{"platform_item_id": "bom-1", "title": "Bom"}'


def test_a_byte_order_mark_before_the_first_line_is_no_part_of_it(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(codecs.BOM_UTF8 + LINE + b"\r\n\r\n" + LINE.replace(b"bom-1", b"crlf-2"))
    assert list(read_jsonl(feed)) == [
        (1, {"platform_item_id": "bom-1", "title": "Bom"}),
        (3, {"platform_item_id": "crlf-2", "title": "Bom"}),
    ]


def test_a_byte_order_mark_further_down_is_still_an_error(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(LINE + b"\n" + codecs.BOM_UTF8 + LINE)
    (first, second) = list(read_jsonl(feed))
    assert first == (1, {"platform_item_id": "bom-1", "title": "Bom"})
    assert second[0] == 2 and isinstance(second[1], Exception)
