"""The one exception a model file can raise."""


class ModelError(ValueError):
    """A model file or graph is malformed; the message says what and where."""
