"""Transports: how a call's audio and events reach the graph and leave it."""
