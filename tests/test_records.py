"""util/records.Record: to_dict from the fields (through util/jsonio.to_jsonable), the exclusion and
extra hooks, to_json with its checksum, and str() as summary()."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalinglab.util.jsonio import read_checked_json_file, verify_document
from scalinglab.util.records import Record


@dataclass
class Point(Record):
    x: float
    ci: tuple[float, float] | None = None


@dataclass
class Outer(Record):
    name: str
    inner: Point
    points: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)


@dataclass
class WithHooks(Record):
    a: float
    b: float
    frame: pd.DataFrame = field(repr=False, default=None)

    _dict_exclude = ("frame",)

    def _dict_extra(self) -> dict:
        return {"ratio": np.float64(self.a) / self.b, "units": {"a": "FLOPs"}}

    def summary(self) -> str:
        return f"a/b = {self.a / self.b:g}"


def test_fields_in_order_numpy_to_plain_and_nonfinite_as_jsonio_writes_them():
    d = Point(np.float32(0.5), (np.float64(-math.inf), np.nan)).to_dict()
    assert list(d) == ["x", "ci"]
    assert d == {"x": 0.5, "ci": ["-Infinity", None]}
    assert type(d["x"]) is float                      # a numpy scalar comes out a Python float
    json.dumps(d, allow_nan=False)                    # plain JSON: NaN became null, -inf a string


def test_arrays_ints_and_dict_keys_become_plain_json():
    o = Outer("o", Point(1.0), points=np.array([[1, 2], [3, 4]]), counts={np.int64(3): np.int64(7)})
    d = o.to_dict()
    assert d["points"] == [[1, 2], [3, 4]] and type(d["points"][0][0]) is int
    assert d["counts"] == {"3": 7} and type(d["counts"]["3"]) is int


def test_nested_records_use_their_own_to_dict():
    d = Outer("o", Point(2.0, (1.0, 3.0)), points=[Point(math.inf)]).to_dict()
    assert d["inner"] == {"x": 2.0, "ci": [1.0, 3.0]}
    assert d["points"] == [{"x": "Infinity", "ci": None}]


def test_exclusion_and_extra_hooks():
    r = WithHooks(3.0, 4.0, frame=pd.DataFrame({"a": [1]}))
    d = r.to_dict()
    assert list(d) == ["a", "b", "ratio", "units"]     # no "frame"; the extras after the fields
    assert d["ratio"] == 0.75 and type(d["ratio"]) is float
    assert d["units"] == {"a": "FLOPs"}


def test_str_is_summary_when_defined_else_repr():
    assert str(WithHooks(1.0, 2.0)) == "a/b = 0.5"
    p = Point(1.0)
    assert str(p) == repr(p) == "Point(x=1.0, ci=None)"


def test_to_json_is_checked_and_reads_back(tmp_path):
    r = Outer("o", Point(np.nan, (0.0, 1.0)))
    path = tmp_path / "r.json"
    text = r.to_json(path)
    assert path.read_text() == text
    payload, notes = read_checked_json_file(path, "r.json")
    assert notes == [] and payload == r.to_dict()
    doc = json.loads(text)
    doc["name"] = "edited"
    try:
        verify_document(doc, label="r.json")
    except ValueError as exc:
        assert "key name changed" in str(exc)
    else:
        raise AssertionError("an edited record was loaded without complaint")
