"""Export pair datasets to the Hugging Face Hub or to disk (Parquet + card, or the original tars).

`run_export(ExportOptions(...))` is the whole job; `pipelines/export_hub.py` is its command line.
The pieces are usable alone: `rows` (records <-> `datasets` rows, the split), `summary` (counts),
`card` (README.md), `plan` (files and sizes), `hub` (repo id, token, pushes).
"""

from pairgen.export.card import PARQUET, WEBDATASET, CardOptions, render_card
from pairgen.export.errors import ExportError, HubError
from pairgen.export.export import ExportOptions, ExportPlan, run_export
from pairgen.export.plan import PlannedFile, describe_plan
from pairgen.export.rows import FEATURES, record_from_row, split_of, to_row
from pairgen.export.summary import DatasetSummary, summarize

__all__ = [
    "FEATURES",
    "PARQUET",
    "WEBDATASET",
    "CardOptions",
    "DatasetSummary",
    "ExportError",
    "ExportOptions",
    "ExportPlan",
    "HubError",
    "PlannedFile",
    "describe_plan",
    "record_from_row",
    "render_card",
    "run_export",
    "split_of",
    "summarize",
    "to_row",
]
