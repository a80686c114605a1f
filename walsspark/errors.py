"""Errors that the command line turns into one clear line and exit status 2."""


class InputError(ValueError):
    """Bad user input: a missing file, a bad column, bad rows or a bad option value.

    The message is a single line that names the problem; the CLI prints it as
    ``walsspark: error: <message>`` and exits with status 2 before anything is written.
    """
