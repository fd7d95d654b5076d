"""The exceptions an entry point turns into one line and a non-zero exit."""


class UserError(Exception):
  """A problem with the user's input (a file, a flag, a config, a workdir).

  Entry points catch it, print its message on one line and exit with status 2.
  The message says what is wrong and what to do about it.
  """


class Diverged(UserError):
  """The loss or the gradients stopped being finite; nothing after the last good
  checkpoint was saved."""


class Interrupted(Exception):
  """A run stopped by SIGTERM or SIGINT after saving a checkpoint; the exit
  status is 128 + the signal number, as a shell reports a signalled process."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum


def report_user_errors(main):
  """Wraps an absl `main`: stray arguments are a usage error, Orbax's routine log
  lines are hidden, a UserError becomes one line on stderr and exit code 2, and an
  Interrupted run one line and 128 + its signal number."""
  import functools
  import sys

  @functools.wraps(main)
  def wrapped(argv):
    if len(argv) > 1:
      from absl import app
      raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
    quiet_library_logs()
    try:
      return main(argv)
    except UserError as e:
      sys.stderr.write(f'error: {e}\n')
      _quiet_teardown()
      sys.exit(2)
    except Interrupted as e:
      sys.stderr.write(f'{e}\n')
      _quiet_teardown()
      sys.exit(128 + e.signum)
  return wrapped


def _quiet_teardown() -> None:
  """After the one line: the reads Orbax had started in parallel with the one that
  failed are coroutines that die with the process, and Python would print each as
  'Exception ignored in ...' with a traceback; the line said all there is to say."""
  import sys
  sys.unraisablehook = lambda unraisable: None


def quiet_library_logs() -> None:
  """Hides Orbax's per-save INFO lines and its notes on read-only checkpoint
  directories from absl's log (other warnings still show)."""
  import logging as py_logging

  class _Filter(py_logging.Filter):
    def filter(self, record):
      if '/orbax/' not in record.pathname:
        return True
      if record.levelno < py_logging.WARNING:
        return False
      # Opening a run's checkpoints read-only (sampling, inspection) is not news.
      return 'read only' not in str(record.msg) and 'read_only' not in str(record.msg)

  from absl import logging as absl_logging
  absl_logging.get_absl_handler().addFilter(_Filter())
