"""Arithmetic coding of frames with the byte model: lanes, context features, torchac streams."""
