"""JSONL datasets: valid files, and errors that name the line and the problem."""

from __future__ import annotations

import pytest

from foresail.evaluation.dataset import DatasetError, Item, load_jsonl, sha256_hex


def test_parses_items_in_file_order_and_skips_blank_lines() -> None:
    data = (
        b'{"id": "b", "inputs": {"x": [[1, 2]]}, "expected": {"y": [3]}, "label": 1, "source": "ignored"}\n'
        b"\n   \n"
        b'{"id": 7, "inputs": {"x": 0.5}}\r\n'
        b'{"id": "a", "inputs": {"x": [1]}, "expected": null, "label": "cat"}'  # no final newline
    )
    assert load_jsonl(data) == [
        Item(id="b", inputs={"x": [[1, 2]]}, expected={"y": [3]}, label=1),
        Item(id="7", inputs={"x": 0.5}),
        Item(id="a", inputs={"x": [1]}, label="cat"),
    ]


def test_a_byte_order_mark_is_tolerated() -> None:
    assert load_jsonl(b'\xef\xbb\xbf{"id": "a", "inputs": {"x": 1}}\n')[0].id == "a"


GOOD = b'{"id": "ok", "inputs": {"x": 1}}\n'


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("bad JSON", b'{"id": "a", "inputs": ', r"^line 2: invalid JSON"),
        ("not UTF-8", b'{"id": "\xff", "inputs": {"x": 1}}', r"^line 2: not UTF-8"),
        ("NaN", b'{"id": "a", "inputs": {"x": NaN}}', r"^line 2: invalid JSON: NaN is not valid JSON"),
        ("not an object", b"[1, 2]", r"^line 2: expected a JSON object, got list"),
        ("missing id", b'{"inputs": {"x": 1}}', r"^line 2: missing id$"),
        ("null id", b'{"id": null, "inputs": {"x": 1}}', r"^line 2: missing id$"),
        ("empty id", b'{"id": "", "inputs": {"x": 1}}', r"^line 2: empty id$"),
        ("blank id", b'{"id": "  ", "inputs": {"x": 1}}', r"^line 2: empty id$"),
        ("float id", b'{"id": 1.5, "inputs": {"x": 1}}', r"^line 2: id must be a string or an integer, got float"),
        ("bool id", b'{"id": true, "inputs": {"x": 1}}', r"^line 2: id must be a string or an integer, got bool"),
        ("duplicate id", b'{"id": "ok", "inputs": {"x": 2}}', r"^line 2: duplicate id 'ok' \(first on line 1\)"),
        ("missing inputs", b'{"id": "a"}', r"^line 2 \(id 'a'\): missing inputs"),
        ("inputs a list", b'{"id": "a", "inputs": [1]}', r"^line 2 \(id 'a'\): inputs must be an object .* got list"),
        ("empty inputs", b'{"id": "a", "inputs": {}}', r"^line 2 \(id 'a'\): inputs is empty"),
        ("expected a list", b'{"id": "a", "inputs": {"x": 1}, "expected": [1]}', r"expected must be an object"),
        ("float label", b'{"id": "a", "inputs": {"x": 1}, "label": 0.5}', r"label must be an integer or a string, got float"),
    ],
)
def test_errors_name_the_line_and_the_problem(name: str, line: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        load_jsonl(GOOD + line + b"\n")


def test_an_integer_id_and_its_string_are_the_same_id() -> None:
    with pytest.raises(DatasetError, match=r"line 2: duplicate id '7'"):
        load_jsonl(b'{"id": 7, "inputs": {"x": 1}}\n{"id": "7", "inputs": {"x": 1}}\n')


def test_a_dataset_without_items_is_an_error() -> None:
    with pytest.raises(DatasetError, match="no items"):
        load_jsonl(b"\n\n")


def test_sha256_hex() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
