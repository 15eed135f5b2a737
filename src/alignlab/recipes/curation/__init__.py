"""Data tools that call models, judges, samplers or the feedback app: the model-backed side of METHODS.md
family L (the algorithms on records and numbers are in :mod:`alignlab.data`). Each runner reads a file
as a stream, reports every record it cannot use with file and line (counted by reason), writes its
output atomically with a provenance sidecar, and the long ones (label, synthesize) resume after a kill.
``alignlab data label|select|synthesize|trees|route`` are these functions."""
