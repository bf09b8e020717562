"""One error type for every user-facing failure: the CLI prints it as one line and exits 2."""

import errno


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


# errno -> the fix, for the OSErrors a user causes (full disk, permissions, mistyped paths); any other OSError is a bug
_OS_HINTS = {
    "ENOSPC": "no space left on the device: free space or point outdir elsewhere",
    "EDQUOT": "disk quota exceeded: free space or point outdir elsewhere",
    "EACCES": "permission denied: fix the permissions or choose another path",
    "EPERM": "operation not permitted: fix the permissions or choose another path",
    "EROFS": "read-only file system: choose a writable path",
    "ENOENT": "no such file or directory: check the path",
    "EISDIR": "is a directory: give a file path",
    "ENOTDIR": "a parent of this path is not a directory: check the path",
    "ENAMETOOLONG": "file name too long: choose a shorter path",
}


def from_os_error(e: OSError, path: str | None = None) -> GrloError | None:
    """A user-caused OSError as a one-line GrloError naming `path` (or the error's own file name); None otherwise."""
    name = errno.errorcode.get(e.errno or 0)
    if name not in _OS_HINTS:
        return None
    where = path if path is not None else (e.filename if e.filename is not None else None)
    return GrloError(_OS_HINTS[name], path=str(where) if where is not None else None)


def from_decode_error(e: UnicodeDecodeError, path: str, field: str | None = None) -> GrloError:
    bad = e.object[e.start:e.start + 1]
    return GrloError(f"not UTF-8 text (byte {bad!r} at offset {e.start}): re-save the file as UTF-8", path=str(path),
                     field=field)
