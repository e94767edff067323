"""The orderer node: durable Raft storage, the ordering service, its HTTP endpoints."""
