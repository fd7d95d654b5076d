"""Host memory allocator settings for training processes.

XLA on the CPU allocates each step's buffers afresh (tens of MB at hidden 128
and more above). glibc serves blocks of that size with `mmap` and hands them
back with `munmap` when freed, so every step touches brand-new pages: about 13k
page faults per step for the 2x128 LSTM benchmark model, about a quarter of
its step time on the 2-core machine. PyTorch's CPU allocator goes through the same
malloc and pays the same.

`retain_freed_memory()` tells glibc to serve every block from its heaps and to
keep freed memory for reuse: the process's resident size stays at its peak
instead of shrinking between steps, and steps stop faulting. The training and
benchmark entry points call it (see their flags); it is process-wide, so a
library import never does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_done: list[bool] = []


def retain_freed_memory() -> bool:
  """Applies the settings once; True if they took effect (glibc only), else False."""
  if _done:
    return _done[0]
  ok = False
  if platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc':
    try:
      libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
      ok = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(
          libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1))
    except (OSError, AttributeError):
      ok = False
  _done.append(ok)
  return ok
