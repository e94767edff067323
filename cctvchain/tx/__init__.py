"""Fabric's transaction messages: proposals, read-write sets, endorsements, envelopes."""
