"""What `run` and `serve` do when their outputs fail or lag behind: a closed standard output
(``| head -1``) ends the command quietly, as it ends any Unix tool in a pipe; any other
failed write (a full disk) ends it with one error line; webhook alerts still pending at
exit get a warning that says where they wait."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Sequence

from errors.text import printable
from stream.alerts.sinks import JsonlSink, Sink, WebhookSink

#: the exit status of a tool whose output pipe closed (128 + SIGPIPE), as shells report it.
CLOSED_PIPE = 141
#: failed streams named one per line at the end of a run; the rest are counted.
NAMED_FAILURES = 100


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr, control characters escaped (stream names come
    from users and files)."""
    print(f"warning: {printable(message)}", file=sys.stderr)


def warn_failures(failures: Sequence[str], count: int) -> None:
    """One warning per failed stream (``stream: reason``), the first
    :data:`NAMED_FAILURES`; then ``and N more`` for the ``count`` beyond them."""
    for line in failures[:NAMED_FAILURES]:
        warn(line)
    if count > min(len(failures), NAMED_FAILURES):
        more = count - min(len(failures), NAMED_FAILURES)
        warn(f"and {more} more stream(s) failed (each has an error status in the events)")


def stop_on_output_failure(sinks: Sequence[Sink], stop: Callable[[bool], None]) -> None:
    """Call ``stop(drain)`` when the JSON-lines output fails: without draining when its
    reader has gone (nobody wants the rest), draining otherwise (the other sinks, such as
    the webhook's outbox, still get what is in hand)."""
    for sink in sinks:
        if isinstance(sink, JsonlSink):
            sink.on_failure = lambda error: stop(error.errno != errno.EPIPE)


def exit_status(sinks: Sequence[Sink]) -> int | None:
    """After the pipeline has stopped: warn about webhook alerts left pending, and return
    the exit status an output failure calls for (None when every output worked)."""
    for sink in sinks:
        if isinstance(sink, WebhookSink) and sink.left_pending:
            warn(
                f"{sink.left_pending} alert(s) not delivered to the webhook yet; "
                f"they wait in {sink.outbox_path}, and the next run with this outbox sends "
                "them first"
            )
    for sink in sinks:
        if isinstance(sink, JsonlSink) and sink.error is not None:
            if sink.error.errno == errno.EPIPE:
                _quiet_stdout()
                return CLOSED_PIPE
            where = "standard output" if sink.path == "-" else sink.path
            print(
                printable(f"error: cannot write events to {where}: {sink.error.strerror}"),
                file=sys.stderr,
            )
            return 1
    return None


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of the
    closed pipe does not print an error on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
