"""Exceptions shared by the commands, and short exception summaries for error reports."""

import linecache
import traceback

# Frames of a traceback kept in an error reason: enough to show the code that raised.
SUMMARY_FRAMES = 2
SUMMARY_MAX_CHARS = 2000


class ConfigError(Exception):
    """Invalid or missing configuration in the environment of a command."""


class ProjectError(Exception):
    """A Scrapy project that cannot be found or loaded."""


def summarize_exception(error):
    """Return the last lines of an exception's traceback: its innermost frames and the exception.

    Those lines name the exception and the code that raised it, which is what
    a person reading a job's or a deploy's error reason needs first.
    """
    lines = traceback.format_exception(
        type(error), error, error.__traceback__, limit=-SUMMARY_FRAMES, chain=False
    )
    return _shorten(line for line in lines if not line.startswith("Traceback (most recent call last)"))


def format_failure(failure, max_frames=None):
    """Format a Twisted Failure like a Python traceback, without the header line.

    Twisted keeps a failure's frames as tuples after it drops the traceback
    object, so this rebuilds the usual "File ..., line ..." lines from them.
    """
    frames = failure.frames if max_frames is None else failure.frames[-max_frames:]
    stack = traceback.StackSummary.from_list(
        [
            (filename, lineno, name, linecache.getline(filename, lineno).strip())
            for name, filename, lineno, _locals, _globals in frames
        ]
    )
    return "".join(stack.format() + traceback.format_exception_only(failure.type, failure.value))


def summarize_failure(failure):
    """Return the last lines of a Twisted Failure's traceback, like summarize_exception()."""
    return _shorten([format_failure(failure, max_frames=SUMMARY_FRAMES)])


def _shorten(lines):
    text = "".join(lines)
    summary = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
    if len(summary) > SUMMARY_MAX_CHARS:
        summary = "..." + summary[-SUMMARY_MAX_CHARS:]
    return summary
