"""The cm codec a profile sets up for writing."""

from __future__ import annotations

from vortexfmt.profiles.files import Profile


def primed_cm_codec(profile: Profile):
    """CmCodec priming its frames with `profile`. A primed frame has no numeric transform
    (the priming bytes are the format's bytes as they are), so the profile's `layout` is
    recorded in the profile but not used for coding in this version."""
    from vortexfmt.codecs.cm import CmCodec

    return CmCodec(profile=profile)
