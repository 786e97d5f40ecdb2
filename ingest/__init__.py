"""Stage 1: source files -> normalised usage Parquet + quarantine (see DESIGN.md)."""

from .column_map import ColumnMap, load_column_map
from .errors import IngestError, OptionsError, SourceFileError
from .numbers import NumberPlan
from .pipeline import (
    FORMATS,
    Accounting,
    IngestOptions,
    IngestResult,
    content_id,
    ingest_files,
    ingest_to,
    quarantine_known,
    read_usage_dir,
    subscriber_buckets,
    write_ingest,
)

__all__ = [
    "FORMATS", "Accounting", "ColumnMap", "IngestError", "IngestOptions", "IngestResult",
    "NumberPlan", "OptionsError", "SourceFileError", "content_id", "ingest_files", "ingest_to",
    "load_column_map", "quarantine_known", "read_usage_dir", "subscriber_buckets", "write_ingest",
]
