"""What a peer need not look up, verify or decode twice: certificates found in its
registry, endorsement signatures and envelopes its gateway has already checked.

All are memos of pure functions, so a hit answers exactly what the computation would:

* a certificate reference is the SHA-256 of the PEM it stands for, and the ledger's
  registry only grows, so a PEM once found for a reference is the answer for good. Only
  hits are remembered (a miss may resolve once a later block carries the certificate),
  so the memo holds no more entries than the registry.
* whether ``signature`` is a valid ECDSA signature of ``message`` in ``domain`` by the
  key of a certificate depends on nothing else; a hit needs the same certificate hash,
  domain and signature and a message with the same SHA-256. The gateway verifies the
  endorsements it gathers; the validator meets the very same endorsements in the block
  a moment later and would verify them a second time. It still validates every
  endorser's certificate (MSP chain, revocation, validity at the transaction's time)
  and evaluates the policy; only the ECDSA arithmetic over identical bytes is skipped.
* a transaction's bytes decode to one message. The gateway decodes every envelope a
  client submits (for its tx id) and waits until the block carrying exactly those bytes
  commits; the validator takes the decoded envelope instead of decoding them again.

All are safe from any thread: a lookup and an insertion are single dict operations,
and a race can only lose an entry (which is then computed again), never give a wrong one.
"""

from __future__ import annotations

from collections import OrderedDict

from cctvchain.codec import Message
from cctvchain.crypto import Domain, sha256
from cctvchain.msp.certref import CertificateResolver
from cctvchain.msp.identity import Identity

DEFAULT_SIGNATURE_CAPACITY = 8192  # per generation: 8 s of endorsements at 500 tx/s
DEFAULT_DECODED_CAPACITY = 1024
_Key = tuple[bytes, str, bytes]  # certificate hash, domain, signature


class CertificateMemo:
    """A certificate registry's resolver that remembers what it found."""

    def __init__(self, source: CertificateResolver) -> None:
        self._source = source
        self._found: dict[bytes, bytes] = {}

    def __call__(self, reference: bytes) -> bytes | None:
        pem = self._found.get(reference)
        if pem is None:
            pem = self._source(reference)
            if pem is not None:
                self._found[reference] = pem
        return pem


class VerifiedSignatures:
    """Signatures this peer verified and remembered: (certificate hash, domain, signature)
    to the SHA-256 of the message signed.

    A lookup that finds no entry for the signature costs no hashing (most signatures
    the validator meets were never seen by this peer's gateway); one that does compares
    the message's SHA-256. Bounded: two generations of up to ``capacity`` entries each;
    when the current one is full it becomes the previous one and the older is dropped.
    Endorsements come back in a block well within a second, far less than a generation
    lasts at any throughput the peer reaches.
    """

    def __init__(self, capacity: int = DEFAULT_SIGNATURE_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._current: dict[_Key, bytes] = {}
        self._previous: dict[_Key, bytes] = {}
        self.hits = 0

    def verify(
        self,
        identity: Identity,
        domain: Domain,
        message: bytes,
        signature: bytes,
        *,
        remember: bool = True,
    ) -> None:
        """``identity.verify(domain, message, signature)``, unless this very signature
        of this very message was verified (and remembered) before. Raises
        :class:`~cctvchain.crypto.SignatureError` as ``identity.verify`` does."""
        key = (identity.cert_hash, domain.value, signature)
        digest = self._current.get(key) or self._previous.get(key)
        if digest is not None and digest == sha256(message):
            self.hits += 1
            return
        identity.verify(domain, message, signature)
        if remember:
            if len(self._current) >= self.capacity:
                self._previous, self._current = self._current, {}
            self._current[key] = sha256(message)

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)


class DecodedTransactions:
    """Transactions decoded ahead of their block (the gateway's submitted envelopes), by
    their bytes. An entry is taken once (by the validator) or dropped by whoever put it
    once it is no longer awaited; at most ``capacity`` are held (oldest dropped first)."""

    def __init__(self, capacity: int = DEFAULT_DECODED_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._items: OrderedDict[bytes, Message] = OrderedDict()
        self.hits = 0

    def put(self, data: bytes, message: Message) -> None:
        """Remember ``message`` as what ``data`` decodes to (the caller decoded it)."""
        self._items[data] = message
        while len(self._items) > self.capacity:
            try:
                self._items.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def take(self, data: bytes) -> Message | None:
        """What ``data`` decodes to, if it was put (and not taken or dropped) before."""
        message = self._items.pop(data, None)
        if message is not None:
            self.hits += 1
        return message

    def drop(self, data: bytes) -> None:
        self._items.pop(data, None)

    def __len__(self) -> int:
        return len(self._items)
