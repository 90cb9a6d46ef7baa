"""The Vortex container: reading and writing archives over the `spec` declarations."""
