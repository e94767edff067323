"""Client side of the transaction flow: sign proposals, assemble endorsed envelopes."""
