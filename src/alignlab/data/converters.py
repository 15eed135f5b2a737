"""The converters of METHODS.md family L registered as data tools: each public format's reader (see
:mod:`alignlab.data.formats`) and ``ratings_to_pairs`` (:mod:`alignlab.data.conversions`). Their block
tests (round trips, pair counts) are in tests/data/test_converters.py."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from alignlab.data.conversions import ratings_to_pairs
from alignlab.data.formats import get_format
from alignlab.data.formats.base import Outcome, WhereRow
from alignlab.data.tools import register_tool

_TEST = "tests/data/test_converters.py::"


def _reader(fmt: str):  # noqa: ANN202 (a small factory)
    def convert(rows: Iterable[WhereRow]) -> Iterator[Outcome]:
        return get_format(fmt).to_records(rows)

    convert.__name__ = convert.__qualname__ = f"convert_{fmt.replace('-', '_')}"
    return convert


convert_hh_rlhf = register_tool(
    "convert_hh_rlhf",
    kind="convert",
    paper="Bai et al. 2022 'Training a Helpful and Harmless Assistant' (HH-RLHF)",
    test=_TEST + "test_hh_round_trip_reproduces_the_raw_transcripts",
    checked="format knowledge; formats/hh_rlhf.py",
)(_reader("hh-rlhf"))
convert_ultrafeedback = register_tool(
    "convert_ultrafeedback",
    kind="convert",
    paper="Cui et al. 2023 'UltraFeedback' (arXiv 2310.01377)",
    test=_TEST + "test_ultrafeedback_binarised_pairs_have_chosen_above_rejected",
    checked="dataset card and H4 create_dataset.py (formats/ultrafeedback.py)",
)(_reader("ultrafeedback"))
convert_oasst = register_tool(
    "convert_oasst",
    kind="convert",
    paper="Köpf et al. 2023 'OpenAssistant Conversations' (arXiv 2304.07327)",
    test=_TEST + "test_oasst_pair_counts",
    checked="oasst1 dataset card (formats/oasst.py)",
)(_reader("oasst"))
convert_shp = register_tool(
    "convert_shp",
    kind="convert",
    paper="Ethayarajh et al. 2022 'Stanford Human Preferences' (SHP)",
    test=_TEST + "test_shp_swap_and_flip_gives_the_same_pair",
    checked="dataset card (formats/shp.py)",
)(_reader("shp"))
convert_helpsteer = register_tool(
    "convert_helpsteer",
    kind="convert",
    paper="Wang et al. 2023 'HelpSteer' (arXiv 2311.09528)",
    test=_TEST + "test_helpsteer_attributes_within_0_to_4",
    checked="dataset card (formats/helpsteer.py)",
)(_reader("helpsteer"))
register_tool(
    "ratings_to_pairs",
    kind="convert",
    paper="UltraFeedback binarisation (Cui et al. 2023; Zephyr recipe)",
    test=_TEST + "test_ratings_to_pairs_counts",
    checked="METHODS.md ratings_to_pairs block; conversions.py",
)(ratings_to_pairs)
