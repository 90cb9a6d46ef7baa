"""The cm codec a profile sets up for writing."""

from __future__ import annotations

import inspect

from vortexfmt.profiles.files import Profile


def primed_cm_codec(profile: Profile):
    """CmCodec priming its frames with `profile`. The profile's `layout` is passed on only
    where this version's CmCodec takes a `layout` argument (otherwise it is not used)."""
    from vortexfmt.codecs.cm import CmCodec

    options = {"profile": profile}
    if profile.settings.layout is not None and \
            "layout" in inspect.signature(CmCodec).parameters:
        options["layout"] = profile.settings.layout
    return CmCodec(**options)
