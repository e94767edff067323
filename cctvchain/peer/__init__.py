"""The peer's cores: channel context, endorser, block validator, committer and events."""
