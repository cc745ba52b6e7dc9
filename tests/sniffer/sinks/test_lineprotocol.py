"""Line protocol: escaping and field types as InfluxDB's line-protocol reference gives them."""

from __future__ import annotations

from pathlib import Path

from sniffer.sinks.lineprotocol import LineProtocolFile, Point


def test_tags_sorted_and_escaped_fields_typed() -> None:
    point = Point("api requests", {"status": "200", "endpoint": "/a b,c=d", "empty": ""},
                  {"count": 3, "p50": 1.5, "note": 'say "hi"\\', "ok": True}, 1_700_000_000_000_000_000)
    assert point.to_line() == (
        'api\\ requests,endpoint=/a\\ b\\,c\\=d,status=200 count=3i,p50=1.5,note="say \\"hi\\"\\\\",ok=true'
        " 1700000000000000000"
    )


def test_file_sink_writes_one_line_per_point(tmp_path: Path) -> None:
    sink = LineProtocolFile(str(tmp_path / "out.lp"))
    sink.write([Point("m", {"t": "a"}, {"v": 1}, 1), Point("m", {"t": "b"}, {"v": 2}, 2)])
    sink.close()
    assert (tmp_path / "out.lp").read_text() == "m,t=a v=1i 1\nm,t=b v=2i 2\n"
    assert sink.points == 2
