"""Output folders that survive crashes and races: staging, fsync, atomic rename, a lock, and recovery.

Every folder the zoo writes (a saved model, an export, a training run's
result) is written as a hidden sibling ``.NAME.partial-XXXXXXXX``, flushed to
disk (``fsync`` of every file and of the folders), then renamed into place.
Replacing an existing folder is two renames: the old one to
``.NAME.old-XXXXXXXX``, the new one to ``NAME``. A crash between them leaves
no ``NAME``; ``recover`` (run by every save, load and training run) renames
the old one back.

``exclusive(NAME)`` holds an advisory lock (``flock`` on ``.NAME.lock``) for
as long as a process writes ``NAME``: a second run into the same folder fails
at once instead of racing. The kernel releases the lock when the process
dies, so a killed run never leaves a stale lock (only an unlocked file, which
the next run takes over); a finished run removes the file.
"""

import contextlib
import glob
import os
import re
import shutil
import uuid
import warnings
from pathlib import Path

from vae_zoo.errors import ModelFileError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; saves are still staged and renamed
    fcntl = None

UNFINISHED = re.compile(r"^\..+\.(partial|old)-[0-9a-f]{8}$")
_held = {}  # lock path -> (file descriptor, depth): a process may re-enter its own lock


def lock_path(folder):
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def exclusive(folder):
    """Hold the lock on ``folder`` (re-entrant within a process); ``ModelFileError`` at once if another process holds it."""
    path = lock_path(folder)
    key = str(path.resolve()) if path.parent.exists() else str(path.absolute())
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            _held[key] = (fd, _held[key][1] - 1)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _acquire(path, folder)
    except ModelFileError:  # held by another process: already said in the user's words
        raise
    except OSError as err:
        # Named as the user gave it: the lock file beside it is the zoo's own business.
        where = Path(folder).parent if str(Path(folder).parent) != "" else Path(".")
        raise ModelFileError(f"cannot write {folder}: {where} is not a folder one can write into "
                             f"({err.strerror or type(err).__name__})") from None
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        del _held[key]
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # while still locked: a process that opened it before now finds it replaced (see _acquire)
        os.close(fd)  # closing releases the flock


def _acquire(path, folder):
    """An fd holding the flock on ``path``; the file is checked to be still the one at ``path`` once locked."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ModelFileError(f"{folder} is being written by another process (pid {holder}); "
                                 "wait for it to finish or choose another folder") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)  # the holder released and removed it between our open and our lock: start again


def is_unfinished(path):
    """Whether ``path`` is a staging or replaced folder (``.NAME.partial-*``, ``.NAME.old-*``): never a model to load."""
    return bool(UNFINISHED.match(Path(path).name))


def leftovers(folder, kind):
    folder = Path(folder)
    return sorted(folder.parent.glob(f".{glob.escape(folder.name)}.{kind}-*"), key=lambda p: p.stat().st_mtime)



def recover(folder):
    """Finish what a killed writer left at ``folder``; returns what it did, one line per action.

    With no ``NAME`` but a ``.NAME.old-*``, a replacement was interrupted between its
    renames: the old folder comes back. Other ``.old-*`` and ``.partial-*`` folders are
    remains of killed saves and are removed. Nothing is touched while another process
    holds the folder's lock (it may be in the middle of a save).
    """
    folder = Path(folder)
    if not folder.parent.is_dir() or not os.access(folder.parent, os.W_OK):  # read-only (an installed wheel): nothing to do
        return []
    try:
        with exclusive(folder):  # re-entrant for our own writes; a stale lock file goes with the release
            actions = _recover(folder)
    except ModelFileError:  # another process is writing the folder: leave its work alone
        return []
    for action in actions:
        warnings.warn(action, RuntimeWarning, stacklevel=2)
    return actions


def _recover(folder):
    actions = []
    old = leftovers(folder, "old")
    if old and not folder.exists():
        old[-1].rename(folder)
        sync_folder(folder.parent)
        actions.append(f"restored {folder} from {old[-1].name}, left by an interrupted replacement")
        old = old[:-1]
    for stale in [*old, *leftovers(folder, "partial")]:
        shutil.rmtree(stale, ignore_errors=True)
        actions.append(f"removed {stale.name}, left by an interrupted save")
    return actions


def staging_folder(folder):
    """A new, empty ``.NAME.partial-XXXXXXXX`` beside ``folder``."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    return staging


def sync_tree(root):
    """fsync every file under ``root``, then every folder, so the renames that follow publish data that is on disk."""
    for parent, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(parent, name), "rb") as handle:
                os.fsync(handle.fileno())
        sync_folder(parent)


def sync_folder(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not sync folders
        pass
    finally:
        os.close(fd)


def move_into_place(staging, folder, before_swap=None):
    """Publish the finished ``staging`` folder as ``folder``, replacing any folder there.

    ``before_swap`` is a test hook, called between the two renames of a replacement.
    """
    staging, folder = Path(staging), Path(folder)
    sync_tree(staging)
    if not folder.exists():
        staging.rename(folder)
        sync_folder(folder.parent)
        return
    backup = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
    folder.rename(backup)
    sync_folder(folder.parent)
    if before_swap is not None:
        before_swap()
    try:
        staging.rename(folder)
    except BaseException:
        backup.rename(folder)
        raise
    sync_folder(folder.parent)
    shutil.rmtree(backup, ignore_errors=True)


def refuse_unfinished(path):
    if is_unfinished(path):
        raise ModelFileError(f"{path} is an unfinished or replaced save, not a model; load {Path(path).parent}/"
                             f"{Path(path).name[1:].rsplit('.', 1)[0]} instead")


def write_file(path, data, overwrite=False):
    """Write ``data`` (bytes) to ``path`` all at once: staged beside it, fsynced, renamed into place.

    A crash leaves either the old file or the new one, never half of one. Without
    ``overwrite`` an existing file is refused (and kept), even one created meanwhile.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; replace it with --overwrite (overwrite=True in Python)")
    if not path.parent.is_dir():
        raise ModelFileError(f"cannot write {path}: the folder {path.parent} does not exist")
    staging = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        try:
            handle = open(staging, "wb")
        except OSError as err:  # named as the user gave it, not as the staging file beside it
            raise ModelFileError(f"cannot write {path}: {err.strerror or type(err).__name__}") from None
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(staging, path)
        else:
            try:
                os.link(staging, path)  # fails if the path appeared since the check: nothing is overwritten
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    sync_folder(path.parent)
