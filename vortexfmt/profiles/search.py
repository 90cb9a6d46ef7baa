"""Finding profiles: by path, or by the id an archive records, along a search path.

An archive written with a profile records the profile's id in its header's `model_id`;
its reader needs the profile to decode the primed cm frames. Given no profile, it looks
for a file whose id matches in, in order:

1. each directory of ``$VORTEX_PROFILE_PATH`` (separated by ``os.pathsep``, ``:`` here);
2. the archive's own directory (when reading a named file);
3. the user's profile directory, ``$XDG_DATA_HOME/vortex/profiles`` (default
   ``~/.local/share/vortex/profiles``).

Every file ending in ``.vxprofile`` there is a candidate; only its header is read until
one names the id (each header read is bounded), and the one found is then loaded in full
and its id recomputed.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from vortexfmt.errors import ModelMismatchError
from vortexfmt.profiles.files import SUFFIX, Profile, ProfileError, load_profile, read_header

#: At most this many candidate files are examined per directory.
MAX_CANDIDATES_PER_DIRECTORY = 1000


def user_profile_dir() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "vortex" / "profiles"


def search_path(archive_path: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for an archive's profile, in order."""
    directories = [Path(p) for p in os.environ.get("VORTEX_PROFILE_PATH", "").split(os.pathsep)
                   if p]
    if archive_path is not None:
        directories.append(Path(os.path.abspath(archive_path)).parent)
    directories.append(user_profile_dir())
    return directories


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> Profile:
    return load_profile(path)


def load(path: str | os.PathLike) -> Profile:
    """Load a profile file, reusing an already loaded copy of an unchanged file."""
    try:
        stat = os.stat(path)
    except OSError as error:
        raise ProfileError(f"{path}: cannot read the profile ({error.strerror or error})") \
            from None
    return _load_cached(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def is_profile(model: object | None) -> bool:
    """Whether what a user passed as a model is a profile (a Profile, a profile file, or
    any path named like one, ``*.vxprofile``, which loading checks); ProfileError for such
    a path that is no file."""
    if isinstance(model, Profile):
        return True
    if isinstance(model, (str, os.PathLike)):
        from vortexfmt.profiles.files import is_profile_file

        if os.fspath(model).endswith(SUFFIX):  # named as one: a profile, or an error
            if not os.path.isfile(model):
                raise ProfileError(f"{os.fspath(model)}: no such profile file")
            return True  # loading it says what is wrong with it, if anything
        return os.path.isfile(model) and is_profile_file(model)
    return False


def resolve(model: object) -> Profile:
    """A Profile from a Profile or a profile file path; ProfileError otherwise."""
    if isinstance(model, Profile):
        return model
    return load(os.fspath(model))


def find_by_id(profile_id: bytes, archive_path: str | os.PathLike | None = None) -> Profile:
    """The profile with id `profile_id` on the search path; ModelMismatchError if none."""
    wanted = profile_id.hex()
    directories = search_path(archive_path)
    for directory in directories:
        if not directory.is_dir():
            continue
        candidates = sorted(directory.glob(f"*{SUFFIX}"))[:MAX_CANDIDATES_PER_DIRECTORY]
        for path in candidates:
            try:
                metadata, _ = read_header(path)
                if metadata.get("vortex.id") != wanted:
                    continue
                profile = load(path)
            except ProfileError:
                continue
            if profile.profile_id == profile_id:
                return profile
    searched = ", ".join(str(d) for d in directories)
    raise ModelMismatchError(f"the archive needs profile {wanted[:16]}, not found in {searched}"
                             " (pass --model PROFILE or set VORTEX_PROFILE_PATH)")


def for_archive(archive_id: bytes, model: object | None,
                archive_path: str | os.PathLike | None = None) -> Profile:
    """The profile to decode an archive whose header records `archive_id`: the one given
    (which must have that id: ModelMismatchError names both otherwise), else the one found
    by id on the search path."""
    if model is None:
        return find_by_id(archive_id, archive_path)
    try:
        chosen = resolve(model)
    except ProfileError as error:
        raise ModelMismatchError(f"the archive needs profile {archive_id.hex()[:16]}: "
                                 f"{error}") from None
    if chosen.profile_id != archive_id:
        raise ModelMismatchError(f"the archive needs profile {archive_id.hex()[:16]}, but "
                                 f"profile {chosen.hex_id[:16]} was given")
    return chosen
