"""The one exception type for mistakes a user can make and fix."""


class UserError(Exception):
  """A problem with the user's input (a file, a flag, a config, a workdir).

  Entry points catch it, print its message on one line and exit with status 2.
  The message says what is wrong and what to do about it.
  """


def report_user_errors(main):
  """Wraps an absl `main`: a UserError becomes one line on stderr and exit code 2."""
  import functools
  import sys

  @functools.wraps(main)
  def wrapped(argv):
    try:
      return main(argv)
    except UserError as e:
      sys.stderr.write(f'error: {e}\n')
      sys.exit(2)
  return wrapped


def quiet_library_logs() -> None:
  """Hides Orbax's per-save INFO lines from absl's log (warnings still show)."""
  import logging as py_logging

  class _Filter(py_logging.Filter):
    def filter(self, record):
      return record.levelno >= py_logging.WARNING or '/orbax/' not in record.pathname

  from absl import logging as absl_logging
  absl_logging.get_absl_handler().addFilter(_Filter())
