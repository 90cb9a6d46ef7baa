"""Profiles: trained warm starts for the cm codec (FORMAT.md "Profiles").

`files` reads and writes profile files (safetensors, torch-free, bounded), `search` finds
the one an archive needs, `codec` sets up the cm codec with one, and `train` makes one
from sample files by measurement (`vortex train`).
"""

from vortexfmt.profiles.files import (
    Profile,
    ProfileError,
    ProfileSettings,
    load_profile,
    save_profile,
)

__all__ = ["Profile", "ProfileError", "ProfileSettings", "load_profile", "save_profile"]
