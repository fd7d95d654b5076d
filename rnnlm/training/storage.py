"""A disk that cannot be written (full, over quota, read-only, no permission), ours or
Orbax's writer thread's, turned into one line that says the last checkpoint is intact."""

from __future__ import annotations

import contextlib
import errno
import os

from rnnlm.errors import UserError
from rnnlm.training import checkpoint as checkpoint_lib


_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_STORAGE_MESSAGES = ('No space left on device', 'Disk quota exceeded', 'Read-only file system',
                     'Permission denied')


def storage_error(e: BaseException) -> str | None:
  """What is wrong with the disk, if `e` (ours, or Orbax's from its writer thread)
  says the workdir could not be written; else None."""
  if isinstance(e, OSError) and e.errno in _STORAGE_ERRNOS:
    return os.strerror(e.errno)
  text = str(e)
  return next((m for m in _STORAGE_MESSAGES if m in text), None)


def storage_user_error(workdir: str, reason: str) -> UserError:
  return UserError(f'cannot write to {workdir}: {reason}. The last complete checkpoint'
                   f' (step {_last_complete_step(workdir)}) is intact: free space or fix the'
                   ' permissions, then run the same command to resume')


def _last_complete_step(workdir: str):
  try:
    ckpt = checkpoint_lib.Checkpointer(workdir, read_only=True)
  except UserError:
    return 'none'
  try:
    return ckpt.latest_step() or 'none'
  finally:
    ckpt.close()


@contextlib.contextmanager
def reported(workdir: str, *closers):
  """Runs the body, then the `closers` (each even when the body raised). An error that
  says the disk could not be written, from the body or from a closer (Orbax writes
  in a thread of its own, so its error can come from `close`), becomes
  `storage_user_error`; any other error passes unchanged. A closer's storage error
  after another error is dropped: the error already on its way says more."""
  raising = False
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    raising = True
    reason = None if isinstance(e, UserError) else storage_error(e)
    if reason is None:
      raise
    raise storage_user_error(workdir, reason) from e
  except BaseException:
    raising = True
    raise
  finally:
    for close in closers:
      try:
        close()
      except Exception as e:  # pylint: disable=broad-except
        reason = storage_error(e)
        if reason is None:
          raise
        if not raising:
          raise storage_user_error(workdir, reason) from e
