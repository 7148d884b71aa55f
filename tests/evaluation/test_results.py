"""Result files: torn lines, duplicates, errors retried, compaction order, byte-identical merges."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from foresail.evaluation.results import RESULTS_FILE, ResultStore, canonical, jsonable, merge_if_complete


def rec(item_id: str, **kw: Any) -> dict[str, Any]:
    return {"id": item_id, "shard": 0, "correct": True, "value": 1.0, **kw}


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical({"z": 1, "a": [1.5, "x"], "id": "k"}) == b'{"a":[1.5,"x"],"id":"k","z":1}\n'
    with pytest.raises(ValueError, match="Out of range float"):
        canonical({"id": "k", "v": math.nan})


@pytest.mark.parametrize(
    ("name", "value", "want"),
    [
        ("floats", np.array([[0.5, 1.0]], dtype=np.float32), [[0.5, 1.0]]),
        ("ints", np.array([1, 2], dtype=np.int64), [1, 2]),
        ("non-finite as strings", np.array([math.nan, math.inf, -math.inf, 1.0]), ["NaN", "Infinity", "-Infinity", 1.0]),
        ("a scalar", np.float64(math.inf), "Infinity"),
        ("BYTES as text", np.array([b"cat", b"\xff"], dtype=object), ["cat", "\\xff"]),
        ("bools", np.array([True, False]), [True, False]),
    ],
)
def test_jsonable(name: str, value: Any, want: Any) -> None:
    assert jsonable(value) == want
    canonical({"id": "x", "v": jsonable(value)})  # always valid JSON


def test_append_and_read_back(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "out", 3)
    assert store.done() == {}
    store.append([rec("a"), rec("b")])
    store.append([])
    store.append([rec("c")])
    assert store.path.name == "shard-3.jsonl"
    assert list(store.done()) == ["a", "b", "c"]
    assert store.path.read_bytes().count(b"\n") == 3


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, 0)
    store.append([rec("a"), rec("b")])
    with open(store.path, "ab") as f:
        f.write(b'{"correct":true,"id":"c","sha')  # a kill in the middle of a write
    assert list(store.done()) == ["a", "b"]
    store.append([rec("c")])
    assert store.path.read_bytes() == canonical(rec("a")) + canonical(rec("b")) + canonical(rec("c"))


def test_a_torn_line_that_happens_to_parse_does_not_count_without_its_newline(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, 0)
    store.path.write_bytes(canonical(rec("a")) + canonical(rec("b"))[:-1])
    assert list(store.done()) == ["a"]


def test_a_torn_only_line_is_cut_entirely(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, 0)
    store.path.write_bytes(b'{"id":"a","cor' * 10_000)  # longer than one read block, no newline at all
    store.append([rec("b")])
    assert store.path.read_bytes() == canonical(rec("b"))


def test_garbage_lines_are_skipped_and_their_items_redone(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, 0)
    store.path.write_bytes(canonical(rec("a")) + b"\x00\x00\x00\n" + b'{"no":"id"}\n' + b"[1]\n" + canonical(rec("b")))
    assert list(store.done()) == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "lines", "want"),
    [
        ("first success wins", [rec("a", value=0.1), rec("a", value=0.9)], rec("a", value=0.1)),
        ("a success replaces an error", [rec("a", error="timeout"), rec("a", value=0.5)], rec("a", value=0.5)),
        ("an error never replaces a success", [rec("a", value=0.5), rec("a", error="timeout")], rec("a", value=0.5)),
        ("the latest error is kept", [rec("a", error="first"), rec("a", error="second")], rec("a", error="second")),
    ],
)
def test_duplicate_ids(tmp_path: Path, name: str, lines: list[dict[str, Any]], want: dict[str, Any]) -> None:
    store = ResultStore(tmp_path, 0)
    store.append(lines)
    assert store.done() == {"a": want}, name


def test_compact_writes_the_given_order_once_per_id(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, 1)
    store.append([rec("c"), rec("a")])
    store.append([rec("b"), rec("a", value=0.0)])
    path = store.compact(["b", "c", "a"])
    assert path.name == "shard-1.final.jsonl"
    assert path.read_bytes() == canonical(rec("b")) + canonical(rec("c")) + canonical(rec("a"))
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_compact_refuses_an_incomplete_shard(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, 0)
    store.append([rec("a")])
    with pytest.raises(ValueError, match=r"1 item\(s\) have no result yet, e.g. 'b'"):
        store.compact(["a", "b"])
    assert not store.final_path.exists()


def write_run(directory: Path, shards: int, seed_order: list[list[str]]) -> None:
    for shard, ids in enumerate(seed_order):
        store = ResultStore(directory, shard)
        store.append([rec(i, shard=shard, outputs={"y": [0.1 * len(i)]}) for i in reversed(ids)])
        store.compact(ids)


def test_merge_waits_for_every_shard_then_is_byte_identical_across_runs(tmp_path: Path) -> None:
    parts = [["k", "a", "x"], ["b", "m"], ["c"]]
    run1, run2 = tmp_path / "run1", tmp_path / "run2"
    write_run(run1, 3, parts[:2])
    assert merge_if_complete(run1, 3) is None
    write_run(run1, 3, parts)
    out1 = merge_if_complete(run1, 3)
    write_run(run2, 3, [list(reversed(p)) for p in parts])  # other orders of arrival and compaction
    out2 = merge_if_complete(run2, 3)
    assert out1 is not None and out2 is not None
    assert out1.name == RESULTS_FILE
    assert out1.read_bytes() == out2.read_bytes()
    assert [json.loads(line)["id"] for line in out1.read_bytes().splitlines()] == ["a", "b", "c", "k", "m", "x"]


def test_merge_order_key(tmp_path: Path) -> None:
    write_run(tmp_path, 2, [["2", "10"], ["1"]])
    out = merge_if_complete(tmp_path, 2, order_key=int)
    assert out is not None
    assert [json.loads(line)["id"] for line in out.read_bytes().splitlines()] == ["1", "2", "10"]


def test_merge_refuses_an_id_in_two_shards(tmp_path: Path) -> None:
    write_run(tmp_path, 2, [["a", "b"], ["b"]])
    with pytest.raises(ValueError, match=r"id 'b' is in two shards"):
        merge_if_complete(tmp_path, 2)
    assert not (tmp_path / RESULTS_FILE).exists()
