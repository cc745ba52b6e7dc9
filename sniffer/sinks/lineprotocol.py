"""InfluxDB line protocol: the one representation of a point, shared by the InfluxDB writer and the file sink.

Escaping follows the line-protocol reference: commas, spaces and equals signs in tag keys and values and in
field keys; commas and spaces in measurement names; quotes and backslashes in string fields. Integers get the
`i` suffix. Timestamps are nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

_TAG_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "=": r"\=", "\n": r"\n"})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, int | float | str | bool]
    ts_ns: int

    def to_line(self) -> str:
        tags = "".join(
            f",{key.translate(_TAG_ESCAPES)}={value.translate(_TAG_ESCAPES)}"
            for key, value in sorted(self.tags.items())
            if value != ""
        )
        fields = ",".join(f"{key.translate(_TAG_ESCAPES)}={_field(value)}" for key, value in self.fields.items())
        return f"{self.measurement.translate(_MEASUREMENT_ESCAPES)}{tags} {fields} {self.ts_ns}"


def _field(value: int | float | str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class LineProtocolFile:
    """Writes points as line protocol to a file, for `influx write` or Telegraf to load later."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._handle: TextIO = open(path, "w", encoding="utf-8")  # noqa: SIM115
        self.points = 0

    def write(self, points: list[Point]) -> None:
        for point in points:
            self._handle.write(point.to_line())
            self._handle.write("\n")
        self.points += len(points)

    def reopen(self) -> None:
        self._handle.close()
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        self._handle.close()
