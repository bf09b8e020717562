"""One error type for every user-facing failure: the CLI prints it as one line and exits 2."""


class GrloError(Exception):
    """A failure caused by input (config, data file, checksum...), reported as one line."""

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None):
        where = ""
        if path:
            where = f"{path}"
            if field:
                where += f": {field}"
            where += ": "
        elif field:
            where = f"{field}: "
        super().__init__(where + message)
