"""What a checkpoint wrote, recorded after it commits and checked before it is read.

Orbax commits a checkpoint by renaming its temporary directory once every item is
written: a step directory without its commit is never listed. That guards against a
save cut short, not against a file damaged after the commit (an interrupted copy of
the workdir, a file system that lost a write, a disk that returns other bytes). So
rnnlm records, beside each committed step, `rnnlm_manifest.json`: every file of the
step with its size and SHA-256. `verify` reads them back and names the first file
that is missing, has another size, or other bytes.

The manifest of a step is written once its save has finished (`Checkpointer` does it
before the next save starts, and on wait and close), so every committed step but
the newest has one before a later save can prune an older step.
"""

from __future__ import annotations

import json
import os

from rnnlm import data

MANIFEST = 'rnnlm_manifest.json'


def _files(step_dir: str) -> list[str]:
  out = []
  for root, dirs, names in os.walk(step_dir):
    dirs.sort()
    for n in sorted(names):
      rel = os.path.relpath(os.path.join(root, n), step_dir)
      if rel != MANIFEST:
        out.append(rel)
  return out


def write_manifest(step_dir: str) -> dict:
  """Records every file of a committed step directory (size, SHA-256), atomically."""
  manifest = {'version': 1, 'files': {
      rel: {'size': os.path.getsize(os.path.join(step_dir, rel)),
            'sha256': data.file_sha256(os.path.join(step_dir, rel))} for rel in _files(step_dir)}}
  data.atomic_write(os.path.join(step_dir, MANIFEST), json.dumps(manifest, indent=1))
  return manifest


def has_manifest(step_dir: str) -> bool:
  return os.path.exists(os.path.join(step_dir, MANIFEST))


def verify(step_dir: str) -> str | None:
  """None if every file the step's manifest lists is there with its size and bytes;
  else why not, naming the file. A step without a manifest (written by an earlier
  version, or the newest step of a process that died before recording it) is not
  checked here: None."""
  path = os.path.join(step_dir, MANIFEST)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      files = json.load(f)['files']
  except (OSError, ValueError, KeyError, TypeError) as e:
    return f'its manifest {MANIFEST} is unreadable ({type(e).__name__})'
  for rel, want in files.items():
    full = os.path.join(step_dir, rel)
    if not os.path.isfile(full):
      return f'{rel} is missing'
    size = os.path.getsize(full)
    if size != want['size']:
      return f'{rel} has {size} bytes, {want["size"]} were written'
    if data.file_sha256(full) != want['sha256']:
      return f'{rel} has other bytes than were written (SHA-256 differs)'
  return None
