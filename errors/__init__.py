"""User-facing errors: one line that says what went wrong and what was expected."""


class LipForensicsError(Exception):
    """An error caused by the user's input (file, flag, stream) rather than by a bug.

    The command line prints ``error: <message>`` and exits non-zero, without a traceback.
    Keep the message to one line and say what was expected.
    """


class CheckpointError(LipForensicsError):
    """A weight file is missing, unreadable or does not match the network."""


class MediaError(LipForensicsError):
    """A video or crop file is missing, corrupt, or holds no usable face."""


class BackendUnavailable(LipForensicsError):
    """A remote inference server cannot be reached or did not answer in time."""


class LipForensicsWarning(UserWarning):
    """Something the user should know that does not stop the work (a cache folder that
    cannot be used, a corrupt cache entry rebuilt). The command line prints it as one
    ``warning: <message>`` line."""
