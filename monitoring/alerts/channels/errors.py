class ChannelError(Exception):
    """A delivery that did not get through; `permanent` says a retry cannot help."""

    def __init__(self, message, *, permanent=False, status=None):
        super().__init__(message)
        self.permanent = permanent
        self.status = status
