"""Errors that stop an ingest: a bad file or bad options. A bad row is never an error here;
it goes to quarantine with a reason.

    IngestError
    ├── SourceFileError   a file cannot be read as the declared format (names the file)
    └── OptionsError      options or a column map that cannot work (names the option)
"""


class IngestError(Exception):
    """Base of ingest errors; the message says what to do."""


class SourceFileError(IngestError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


class OptionsError(IngestError):
    pass
