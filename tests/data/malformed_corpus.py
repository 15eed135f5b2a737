"""A corpus of malformed (and a few awkward but valid) data files, one per case, for every reader.

Each :class:`Case` writes one file and states, worked out by hand from the bytes written, what
``alignlab data validate`` must report: rows read, records made, how many problems, rows dropped with a
reason, and words every problem message must hold (the field and what was expected). ``keep`` cases are
inputs that must be accepted unchanged (the record read back equals ``expect_record``).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOOD = {"prompt": "What is 2+2?", "completions": ["4", "5"], "ranking": [0, 1]}
GOOD_LINE = json.dumps(GOOD)


@dataclass
class Case:
    name: str
    filename: str
    content: bytes | Callable[[Path], None]
    rows: int | None  # None: not checked (how much of a cut-off gzip reads depends on its blocks)
    records: int
    problems: int
    needles: tuple[str, ...] = ()  # each must appear in the problem messages
    format: str = "auto"
    dropped: int = 0
    whole_file: bool = False  # the problem names the file, not a line or row
    notes: tuple[str, ...] = ()
    expect_record: dict[str, Any] | None = None  # for accepted cases: the first record, exactly

    def write(self, folder: Path) -> Path:
        path = folder / self.name / self.filename
        path.parent.mkdir(parents=True)
        if callable(self.content):
            self.content(path)
        else:
            path.write_bytes(self.content)
        return path


def _lines(*lines: str | bytes) -> bytes:
    return b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x in lines)


def _bad(name: str, bad_line: str | bytes, *needles: str, fmt: str = "auto", good: str = GOOD_LINE) -> Case:
    """One bad line after one good line: 2 rows, 1 record, 1 problem at line 2."""
    return Case(name, "data.jsonl", _lines(good, bad_line), 2, 1, 1, needles, fmt)


def _rec(**changes: Any) -> str:
    row = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            row.pop(key)
        else:
            row[key] = value
    return json.dumps(row)


_DROP = object()


def _gz(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as f:
        f.write(data)
    return out.getvalue()


def _parquet(rows: list[dict[str, Any]]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)

    return write


def _truncated_parquet(path: Path) -> None:
    _parquet([GOOD] * 50)(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# ------------------------------------------------------------------ alignlab records (JSONL)
ALIGNLAB = [
    _bad("weight-infinity", GOOD_LINE[:-1] + ', "weight": Infinity}', "Infinity is not a JSON number"),
    _bad("weight-nan", GOOD_LINE[:-1] + ', "weight": NaN}', "NaN is not a JSON number"),
    _bad("weight-1e999", GOOD_LINE[:-1] + ', "weight": 1e999}', "too large for a 64-bit float"),
    _bad("weight-negative", _rec(weight=-1), "'weight' must be a finite number >= 0"),
    _bad("weight-text", _rec(weight="1"), "'weight' must be a finite number >= 0"),
    _bad("weight-huge-int", GOOD_LINE[:-1] + ', "weight": ' + "9" * 5000 + "}", "invalid number"),
    _bad("duplicate-key", GOOD_LINE[:-1] + ', "ranking": [1, 0]}', "key 'ranking' appears twice"),
    _bad("lone-surrogate", '{"prompt": "a\\ud800b", "completions": ["x"]}', "prompt", "surrogate"),
    _bad(
        "lone-surrogate-meta-key",
        '{"prompt": "a", "completions": ["x"], "meta": {"\\udc00": 1}}',
        "surrogate",
    ),
    _bad(
        "span-offsets-text",
        _rec(spans=[[{"start": "0", "end": "1"}], []]),
        "span offsets in spans[0] must be integers",
    ),
    _bad(
        "span-offsets-float",
        _rec(spans=[[{"start": 0.0, "end": 1.0}], []]),
        "span offsets in spans[0] must be integers",
    ),
    _bad("span-outside", _rec(spans=[[{"start": 0, "end": 9}], []]), "outside completions[0]"),
    _bad("span-unknown-key", _rec(spans=[[{"start": 0, "end": 1, "colour": "red"}], []]), "unknown key"),
    _bad("span-not-object", _rec(spans=[["0-1"], []]), "spans[0][0] must be an object"),
    _bad("span-weight-text", _rec(spans=[[{"start": 0, "end": 1, "weight": "x"}], []]), "span weight"),
    _bad("span-label-number", _rec(spans=[[{"start": 0, "end": 1, "label": 3}], []]), "span label"),
    _bad("id-object", _rec(id={"a": 1}), "'id' must be a string or an integer"),
    _bad("id-list", _rec(id=[1, 2]), "'id' must be a string or an integer"),
    _bad("meta-zero", _rec(meta=0), "'meta' must be an object"),
    _bad("meta-list", _rec(meta=[1]), "'meta' must be an object"),
    _bad("ranking-text", _rec(ranking=["0", "1"]), "'ranking' must hold integers"),
    _bad("ranking-float", _rec(ranking=[0.5, 1]), "'ranking' must hold integers"),
    _bad("ranking-length", _rec(ranking=[0, 1, 2]), "'ranking' must be a list with one entry per completion"),
    _bad("labels-text", _rec(ranking=_DROP, labels=["true", "false"]), "'labels' must hold true"),
    _bad(
        "scores-text",
        _rec(ranking=_DROP, scores=[{"helpfulness": "4"}, {}]),
        "scores[0].helpfulness must be a finite number",
    ),
    _bad("scores-not-object", _rec(ranking=_DROP, scores=[4, 3]), "scores[0] must be an object"),
    _bad("critique-number", _rec(critique=[1, None]), "'critique' must hold a string or null"),
    _bad("prompt-number", _rec(prompt=7), "'prompt' must be a string or a non-empty list"),
    _bad("prompt-role", _rec(prompt=[{"role": "robot", "content": "hi"}]), "prompt[0].role"),
    _bad("prompt-content-list", _rec(prompt=[{"role": "user", "content": ["hi"]}]), "prompt[0].content"),
    _bad("completions-text", _rec(completions="4", ranking=_DROP), "'completions' must be a non-empty list"),
    _bad("completion-number", _rec(completions=["4", 5]), "completions[1] must be a string"),
    _bad("completion-empty", _rec(completions=[" ", "5"]), "completions[0] is empty"),
    _bad("missing-prompt", _rec(prompt=_DROP), "missing field 'prompt'"),
    _bad("unknown-field", _rec(chosen="4"), "unknown field(s) ['chosen']"),
    _bad("source-number", _rec(source=3), "'source' must be a string"),
    _bad("truncated-line", GOOD_LINE[:20], "invalid JSON"),
    _bad("array-line", "[1, 2]", "expected a JSON object, got list"),
    _bad("deep-nesting", "[" * 5000 + "]" * 5000, "nested more than 64 levels"),
    _bad("deep-meta", _rec(meta={"a": json.loads("[" * 80 + "]" * 80)}), "nested more than 64 levels"),
    _bad("invalid-utf8", b'{"prompt": "caf\xe9", "completions": ["x"]}', "not valid UTF-8", "0xe9"),
]

# ------------------------------------------------------------------ containers
CONTAINERS = [
    Case("empty", "data.jsonl", b"", 0, 0, 1, ("the file is empty",), whole_file=True),
    Case("blank-lines", "data.jsonl", b"\n  \n\r\n", 0, 0, 1, ("the file is empty",), whole_file=True),
    Case("empty-gz", "data.jsonl.gz", _gz(b""), 0, 0, 1, ("the file is empty",), whole_file=True),
    Case(
        "gzip-named-jsonl",
        "data.jsonl",
        _gz(_lines(GOOD_LINE)),
        0,
        0,
        1,
        ("gzip-compressed", ".jsonl.gz"),
        whole_file=True,
    ),
    Case(
        "gz-not-gzip",
        "data.jsonl.gz",
        _lines(GOOD_LINE),
        0,
        0,
        1,
        ("named .gz but not gzip",),
        whole_file=True,
    ),
    Case(
        "gz-truncated",
        "data.jsonl.gz",
        _gz(_lines(*[f'{{"prompt": "q{i}", "completions": ["{i * i}"]}}' for i in range(400)]))[:600],
        None,
        0,
        1,
        ("damaged or cut short",),
        whole_file=True,
    ),
    Case(
        "utf16",
        "data.jsonl",
        _lines(GOOD_LINE).decode().encode("utf-16"),
        0,
        0,
        1,
        ("UTF-16",),
        whole_file=True,
    ),
    Case(
        "parquet-named-jsonl", "data.jsonl", _parquet([GOOD]), 0, 0, 1, ("a Parquet file",), whole_file=True
    ),
    Case("zip-named-jsonl", "data.jsonl", b"PK\x03\x04rest", 0, 0, 1, ("a zip archive",), whole_file=True),
    Case(
        "json-array-duplicate-key",
        "data.json",
        ("[" + GOOD_LINE + ", " + GOOD_LINE[:-1] + ', "prompt": "x"}]').encode(),
        0,
        0,
        1,
        ("key 'prompt' appears twice",),
        whole_file=True,
    ),
    Case(
        "json-array-truncated",
        "data.json",
        ("[" + GOOD_LINE).encode(),
        0,
        0,
        1,
        ("invalid JSON", "line 1"),
        whole_file=True,
    ),
    Case(
        "json-array-nan",
        "data.json",
        ("[" + GOOD_LINE[:-1] + ', "weight": NaN}]').encode(),
        0,
        0,
        1,
        ("NaN is not a JSON number",),
        whole_file=True,
    ),
    Case(
        "json-array-item-not-object",
        "data.json",
        ("[" + GOOD_LINE + ", 3]").encode(),
        2,
        1,
        1,
        ("item 1", "expected a JSON object, got int"),
    ),
    Case(
        "json-array-invalid-utf8",
        "data.json",
        b'[{"prompt": "\xff", "completions": ["x"]}]',
        0,
        0,
        1,
        ("not valid UTF-8",),
        whole_file=True,
    ),
    Case(
        "parquet-truncated",
        "data.parquet",
        _truncated_parquet,
        0,
        0,
        1,
        ("cannot read Parquet",),
        whole_file=True,
    ),
    Case(
        "parquet-nan-weight",
        "data.parquet",
        _parquet([{**GOOD, "weight": 1.0}, {**GOOD, "weight": float("nan")}]),
        2,
        1,
        1,
        ("row 1", "weight is nan"),
    ),
    Case(
        "parquet-inf-score",
        "data.parquet",
        _parquet([{**GOOD, "weight": 2.0}, {**GOOD, "weight": float("inf")}]),
        2,
        1,
        1,
        ("row 1", "weight is inf"),
    ),
]

# ------------------------------------------------------------------ awkward but valid: kept unchanged
KEPT = [
    Case(
        "bom",
        "data.jsonl",
        b"\xef\xbb\xbf" + _lines(GOOD_LINE),
        1,
        1,
        0,
        notes=("byte-order mark",),
        expect_record=GOOD,
    ),
    Case(
        "u2028-u0085-in-strings",
        "data.jsonl",
        _lines(json.dumps({"prompt": "a\u2028b\u0085c", "completions": ["x\u2029y"]}, ensure_ascii=False)),
        1,
        1,
        0,
        expect_record={"prompt": "a\u2028b\u0085c", "completions": ["x\u2029y"]},
    ),
    Case(
        "crlf-lines",
        "data.jsonl",
        (GOOD_LINE + "\r\n").encode(),
        1,
        1,
        0,
        expect_record=GOOD,
    ),
]


# ------------------------------------------------------------------ TRL layouts
def _trl(**row: Any) -> str:
    return json.dumps({"prompt": "Sky?", "chosen": "blue", "rejected": "green", **row})


TRL_GOOD = _trl()
CONV_GOOD = json.dumps(
    {
        "prompt": [{"role": "user", "content": "Sky?"}],
        "chosen": [{"role": "assistant", "content": "blue"}],
        "rejected": [{"role": "assistant", "content": "green"}],
    }
)
UNPAIRED_GOOD = json.dumps({"prompt": "Sky?", "completion": "blue", "label": True})
SFT_GOOD = json.dumps({"prompt": "Sky?", "completion": "blue"})
TRL = [
    _bad("trl-margin-text", _trl(margin="big"), "'margin' must be a finite number", fmt="trl", good=TRL_GOOD),
    _bad(
        "trl-margin-list", _trl(margin=[1, 2]), "'margin' must be a finite number", fmt="trl", good=TRL_GOOD
    ),
    _bad(
        "trl-margin-nan",
        _trl()[:-1] + ', "margin": NaN}',
        "NaN is not a JSON number",
        fmt="trl",
        good=TRL_GOOD,
    ),
    _bad("trl-id-object", _trl(id={"x": 1}), "'id' must be text or an integer", fmt="trl", good=TRL_GOOD),
    _bad("trl-chosen-number", _trl(chosen=3), "'chosen' must be text or a list", fmt="trl", good=TRL_GOOD),
    _bad(
        "trl-missing-rejected",
        json.dumps({"prompt": "a", "chosen": "b"}),
        "missing field 'rejected'",
        fmt="trl",
        good=TRL_GOOD,
    ),
    _bad(
        "trl-prompt-strings", _trl(prompt=["a", "b"]), "prompt[0] must be an object", fmt="trl", good=TRL_GOOD
    ),
    _bad(
        "trl-conv-two-messages",
        json.dumps(
            {
                "prompt": [{"role": "user", "content": "Sky?"}],
                "chosen": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}],
                "rejected": [{"role": "assistant", "content": "c"}],
            }
        ),
        "exactly one assistant message",
        fmt="trl-conversational",
        good=CONV_GOOD,
    ),
    _bad(
        "trl-conv-content-number",
        json.dumps(
            {
                "prompt": [{"role": "user", "content": "Sky?"}],
                "chosen": [{"role": "assistant", "content": 5}],
                "rejected": [{"role": "assistant", "content": "c"}],
            }
        ),
        "field 'content' must be str",
        fmt="trl-conversational",
        good=CONV_GOOD,
    ),
    _bad(
        "trl-unpaired-label-text",
        json.dumps({"prompt": "Sky?", "completion": "blue", "label": "yes"}),
        "'label' must be true or false",
        fmt="trl-unpaired",
        good=UNPAIRED_GOOD,
    ),
    _bad(
        "trl-unpaired-label-2",
        json.dumps({"prompt": "Sky?", "completion": "blue", "label": 2}),
        "'label' must be true or false",
        fmt="trl-unpaired",
        good=UNPAIRED_GOOD,
    ),
    _bad(
        "trl-sft-last-not-assistant",
        json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}),
        "the last message must be the assistant's reply",
        fmt="trl-sft",
        good=SFT_GOOD,
    ),
    _bad(
        "trl-sft-completion-number",
        json.dumps({"prompt": "Sky?", "completion": 4}),
        "'completion' must be text or a list",
        fmt="trl-sft",
        good=SFT_GOOD,
    ),
]

# ------------------------------------------------------------------ HH-RLHF
HH_GOOD = json.dumps(
    {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Go"}
)
HH = [
    _bad(
        "hh-rejected-number",
        json.dumps({"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": 3}),
        "field 'rejected' must be a transcript string",
        fmt="hh-rlhf",
        good=HH_GOOD,
    ),
    _bad(
        "hh-prompts-differ",
        json.dumps(
            {
                "chosen": "\n\nHuman: Hi\n\nAssistant: Hello",
                "rejected": "\n\nHuman: Hi\n\nAssistant: Yo\n\nHuman: more\n\nAssistant: Go",
            }
        ),
        "the prompt differs between chosen and rejected",
        fmt="hh-rlhf",
        good=HH_GOOD,
    ),
    _bad(
        "hh-no-assistant",
        json.dumps({"chosen": "\n\nHuman: Hi", "rejected": "\n\nHuman: Ho"}),
        "share no",
        fmt="hh-rlhf",
        good=HH_GOOD,
    ),
]


# ------------------------------------------------------------------ UltraFeedback
def _uf(**completion: Any) -> str:
    c = {"response": "4", "annotations": {"helpfulness": {"Rating": "5"}}, "overall_score": 8.0, **completion}
    return json.dumps({"instruction": "2+2?", "completions": [c, {"response": "5", "overall_score": 2}]})


UF_GOOD = _uf()
ULTRAFEEDBACK = [
    _bad(
        "uf-annotations-list",
        _uf(annotations=[{"Rating": "5"}]),
        "annotations must be an object",
        fmt="ultrafeedback",
        good=UF_GOOD,
    ),
    _bad(
        "uf-rating-word",
        _uf(annotations={"helpfulness": {"Rating": "excellent"}}),
        "completions[0].annotations.helpfulness.Rating is 'excellent'",
        fmt="ultrafeedback",
        good=UF_GOOD,
    ),
    _bad(
        "uf-rating-bool",
        _uf(annotations={"honesty": {"Rating": True}}),
        "annotations.honesty.Rating is True",
        fmt="ultrafeedback",
        good=UF_GOOD,
    ),
    _bad(
        "uf-overall-word",
        _uf(overall_score="high"),
        "completions[0].overall_score is 'high'",
        fmt="ultrafeedback",
        good=UF_GOOD,
    ),
    _bad(
        "uf-critique-number",
        _uf(critique=7),
        "completions[0].critique must be text",
        fmt="ultrafeedback",
        good=UF_GOOD,
    ),
    _bad(
        "uf-no-response",
        _uf(response=None),
        "completions[0] has no text 'response'",
        fmt="ultrafeedback",
        good=UF_GOOD,
    ),
    _bad(
        "uf-instruction-number",
        json.dumps({"instruction": 3, "completions": [{"response": "x"}]}),
        "'instruction'",
        fmt="ultrafeedback",
        good=UF_GOOD,
    ),
]


# ------------------------------------------------------------------ OpenAssistant (flat messages)
def _msg(mid: str, parent: str | None, role: str, text: str, rank: Any = None, **extra: Any) -> str:
    return json.dumps(
        {"message_id": mid, "parent_id": parent, "role": role, "text": text, "rank": rank, **extra}
    )


OASST_GOOD = [
    _msg("p1", None, "prompter", "Hi?"),
    _msg("a1", "p1", "assistant", "Hello", 0),
    _msg("a2", "p1", "assistant", "Yo", 1),
]


def _oasst(
    name: str, bad: list[str], rows: int, records: int, problems: int, dropped: int, *needles: str
) -> Case:
    return Case(
        name, "data.jsonl", _lines(*OASST_GOOD, *bad), rows, records, problems, needles, "oasst", dropped
    )


OASST = [
    # b1's rank is refused, so b2 is the only ranked reply left: dropped with that reason.
    _oasst(
        "oasst-rank-word",
        [
            _msg("p2", None, "prompter", "Q?"),
            _msg("b1", "p2", "assistant", "A", "first"),
            _msg("b2", "p2", "assistant", "B", 1),
        ],
        6,
        1,
        1,
        1,
        "'rank' must be a whole number",
    ),
    _oasst(
        "oasst-rank-text-digit",
        [
            _msg("p2", None, "prompter", "Q?"),
            _msg("b1", "p2", "assistant", "A", "0"),
            _msg("b2", "p2", "assistant", "B", 1),
        ],
        6,
        1,
        1,
        1,
        "'rank' must be a whole number",
    ),
    _oasst(
        "oasst-rank-fraction",
        [
            _msg("p2", None, "prompter", "Q?"),
            _msg("b1", "p2", "assistant", "A", 0.5),
            _msg("b2", "p2", "assistant", "B", 1),
        ],
        6,
        1,
        1,
        1,
        "'rank' must be a whole number",
    ),
    # a2 again: refused, so p1 still has exactly a1 and the first a2 (one record, unchanged).
    _oasst(
        "oasst-duplicate-id",
        [_msg("a2", "p1", "assistant", "Other", 2)],
        4,
        1,
        1,
        0,
        "message_id 'a2' appears again",
    ),
    _oasst(
        "oasst-id-list", [_msg(["x"], "p1", "assistant", "Other", 2)], 4, 1, 1, 0, "'message_id' must be text"
    ),  # type: ignore[arg-type]
    _oasst(
        "oasst-deleted-text",
        [_msg("a3", "p1", "assistant", "Other", 2, deleted="false")],
        4,
        1,
        1,
        0,
        "'deleted' must be true or false",
    ),
    _oasst(
        "oasst-role",
        [_msg("a3", "p1", "bot", "Other", 2)],
        4,
        1,
        1,
        0,
        "'role' must be 'prompter' or 'assistant'",
    ),
    _oasst(
        "oasst-missing-parent",
        [_msg("c1", "gone", "assistant", "A", 0), _msg("c2", "gone", "assistant", "B", 1)],
        5,
        1,
        1,
        1,
        "parent message 'gone' is not in the data",
    ),
    Case(
        "oasst-tree-replies-not-list",
        "data.jsonl",
        _lines(
            json.dumps(
                {
                    "message_tree_id": "t",
                    "prompt": {"message_id": "p", "role": "prompter", "text": "Q", "replies": "none"},
                }
            )
        ),
        1,
        0,
        1,
        ("expected 'replies' as a list",),
        "oasst",
    ),
]

# ------------------------------------------------------------------ SHP
SHP_GOOD = json.dumps(
    {"history": "Post", "human_ref_A": "a", "human_ref_B": "b", "labels": 1, "post_id": "x1"}
)
SHP = [
    _bad(
        "shp-labels-text",
        json.dumps({"history": "P", "human_ref_A": "a", "human_ref_B": "b", "labels": "1"}),
        "'labels' must be 1",
        fmt="shp",
        good=SHP_GOOD,
    ),
    _bad(
        "shp-labels-2",
        json.dumps({"history": "P", "human_ref_A": "a", "human_ref_B": "b", "labels": 2}),
        "'labels' must be 1",
        fmt="shp",
        good=SHP_GOOD,
    ),
    _bad(
        "shp-post-id-object",
        json.dumps(
            {"history": "P", "human_ref_A": "a", "human_ref_B": "b", "labels": 0, "post_id": {"a": 1}}
        ),
        "'post_id' must be text",
        fmt="shp",
        good=SHP_GOOD,
    ),
    _bad(
        "shp-missing-ref",
        json.dumps({"history": "P", "human_ref_B": "b", "labels": 0}),
        "missing field 'human_ref_A'",
        fmt="shp",
        good=SHP_GOOD,
    ),
]

# ------------------------------------------------------------------ HelpSteer (rows grouped by prompt)
HS_GOOD = json.dumps({"prompt": "P", "response": "r", "helpfulness": 3, "correctness": 4})
HELPSTEER = [
    _bad(
        "hs-rating-text",
        json.dumps({"prompt": "Q", "response": "r", "helpfulness": "3"}),
        "'helpfulness' must be a number from 0 to 4",
        fmt="helpsteer",
        good=HS_GOOD,
    ),
    _bad(
        "hs-rating-range",
        json.dumps({"prompt": "Q", "response": "r", "helpfulness": 7}),
        "'helpfulness' must be a number from 0 to 4",
        fmt="helpsteer",
        good=HS_GOOD,
    ),
    _bad(
        "hs-no-response",
        json.dumps({"prompt": "Q", "helpfulness": 3}),
        "missing or non-text field 'response'",
        fmt="helpsteer",
        good=HS_GOOD,
    ),
    _bad(
        "hs-no-rating",
        json.dumps({"prompt": "Q", "response": "r", "helpfulness": None}),
        "no rating among",
        fmt="helpsteer",
        good=HS_GOOD,
    ),
]

CASES: list[Case] = [*ALIGNLAB, *CONTAINERS, *KEPT, *TRL, *HH, *ULTRAFEEDBACK, *OASST, *SHP, *HELPSTEER]
REFUSED = [c for c in CASES if c.problems]
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"
