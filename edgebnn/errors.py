"""The one exception a model file can raise."""


class ModelError(ValueError):
    """A model file or graph is malformed; the message says what and where."""


def short(value, limit=60):
    """repr of a file-controlled value, cut so messages stay one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(truncated)"
