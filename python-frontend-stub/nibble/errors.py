"""The one exception type of the package."""


class NibbleError(Exception):
    """A failure of the compiler, the runtime or the package itself; the
    message is the tool's own (it names the file, offset or option)."""
