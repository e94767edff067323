"""Ordering: the block cutter and the orderer core (Raft arrives behind the same interface)."""
