"""The one exception type for mistakes a user can make and fix."""


class UserError(Exception):
  """A problem with the user's input (a file, a flag, a config, a workdir).

  Entry points catch it, print its message on one line and exit with status 2.
  The message says what is wrong and what to do about it.
  """


def report_user_errors(main):
  """Wraps an absl `main`: stray arguments are a usage error, Orbax's routine log
  lines are hidden, and a UserError becomes one line on stderr and exit code 2."""
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
      sys.exit(2)
  return wrapped


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
