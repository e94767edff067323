"""``cctvchain verify CLIP --camera ID``: verify a clip against the network's anchors.

The network half of verification; the offline half (check the evidence, align, report)
is :func:`cctvchain.cli.verify_cmd.finish`, the very code ``verify-bundle`` runs.

1. Decode the clip once: the exact digest of every frame and the perceptual
   fingerprint of every frame (a re-encoded copy is located and aligned by the
   latter; the decode is reused for the verdict, nothing is decoded twice).
2. *Locate* (``POST /api/v1/cameras/{id}/locate``) at one peer and at a peer of
   another organisation (the witness, as the network configuration says): which of
   the camera's anchored segments the clip's frames match, and the capture-time span
   of the best contiguous run. Two peers locate, so that neither can hide an anchor
   by locating short of it nor wrongly claim that nothing matches. Nothing located at
   either: ``UNVERIFIABLE`` ("no anchors of camera X match this clip").
3. Fetch the *evidence bundle* (``GET /api/v1/cameras/{id}/evidence?from=&to=``,
   CBOR) for the union of both spans from both peers: anchor transactions with
   inclusion proofs, the frame records with Merkle proofs, the block headers with
   orderer signatures, the configuration chain from genesis with its CRLs. A span
   longer than a peer serves at once (``[peer] max_evidence_span_s``, which the peers
   state in their locate answers; a ``range_too_large`` refusal halves the window) is
   fetched in consecutive windows, each starting at the capture start of the previous
   window's last anchor (so that they overlap by one anchor and no block is left out);
   each window is cross-checked as in step 4, and the windows' bundles are merged into
   one (:func:`cctvchain.verify.merge.merge_bundles`: whatever two windows share must
   be identical, else ``UNVERIFIABLE`` naming the peer).
4. *Cross-check*: the two bundles must hold the same genesis, the same headers for
   every block both have, the same configuration blocks and the same anchors (segment
   hash, block, position) up to the lower of the two ledger heights (a witness that
   is behind gets :data:`CATCH_UP_S` to catch up; one that holds the anchoring block
   but serves no anchors is caught through ``GET /api/v1/blocks/{n}/header``). Any
   difference is ``UNVERIFIABLE`` naming both peers: a single peer can forge nothing
   (the bundle is checked against the orderers' and the camera's signatures), but it
   could hide anchors or serve a fork, and two organisations must agree on that.
5. :func:`~cctvchain.cli.verify_cmd.finish`: check the bundle offline, align, report,
   write ``--json``, ``--report`` and ``--bundle``.

Peers come from ``--peer`` (names of the network configuration, or URLs) in the order
given, then the configuration's peers, those of the wallet's organisation first. A peer
that does not answer (down, TLS failure, 5xx, no verify routes, or without the frame
records: ``records_not_stored``) is skipped for the next; when none answers, or no
witness can be asked, the command fails with exit 1 listing each peer's failure. A refusal
for lack of access (HTTP 403, Algorithm 1) is ``UNVERIFIABLE`` with the peer's code and
message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from cctvchain.cli import verify_cmd
from cctvchain.cli.errors import CliError
from cctvchain.cli.session import DEFAULT_CONFIG, WALLET_ENV
from cctvchain.msp.errors import StoreError
from cctvchain.msp.wallet import Wallet
from cctvchain.network.config import NetworkConfig, NetworkConfigError, load_network_config
from cctvchain.network.genesis import GenesisError
from cctvchain.network.material import NetworkMaterial
from cctvchain.node import tls
from cctvchain.node.client import call_bytes, call_json, check_url
from cctvchain.node.errors import (
    NodeClientError,
    NodeProtocolError,
    NodeRefused,
    NodeTLSError,
    NodeUnreachable,
)
from cctvchain.node.runtime import format_url
from cctvchain.verify.bundle import BundleError, EvidenceBundle, read_bundle
from cctvchain.verify.crosscheck import anchoring_blocks, compare_bundles, short_hash
from cctvchain.verify.fingerprints import ClipFingerprints
from cctvchain.verify.merge import MergeError, merge_bundles, next_window_start
from cctvchain.verify.result import EXIT_FAILURE, EXIT_USAGE, unverifiable

API = "/api/v1"
LOCATE_MAX_FRAMES = 20_000  # digests (and DCT hashes) sent to locate, evenly spread
CATCH_UP_S = 10.0  # how long a cross-checking peer may take to reach the first's height
CALL_TIMEOUT_S = 120.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "verify",
        help="verify a clip against a camera's anchors on the network",
        description=(
            "Verify CLIP against the frame fingerprints camera ID anchored on the ledger. "
            "The clip is decoded once; one peer locates the anchored segments it matches "
            "and serves the evidence (anchor transactions with inclusion proofs, frame "
            "records with Merkle proofs, block headers with orderer signatures, the "
            "channel configuration with its CRLs); a peer of another organisation must "
            "serve the same evidence (else UNVERIFIABLE, naming both); the evidence is "
            "then checked offline and the clip aligned frame by frame. Verdicts: "
            "AUTHENTIC (exit 0, bit-exact), AUTHENTIC_REENCODED (exit 0, same content), "
            "TAMPERED (exit 3: ALTERED, MISSING, INSERTED, REORDERED or DUPLICATED, each "
            "with clip and capture times), UNVERIFIABLE (exit 4: no access, no anchors "
            "match, or the peers disagree). Exit 2: a usage error; exit 1: any other "
            "failure (e.g. no peer answers). Runs as the wallet's identity, which needs "
            "access to the camera (Algorithm 1)."
        ),
    )
    parser.add_argument("clip", metavar="CLIP", help="the clip to verify (any container)")
    parser.add_argument("--camera", required=True, metavar="ID", help="the camera's id")
    parser.add_argument(
        "--from",
        dest="time_from",
        metavar="TIME",
        help="only anchors captured from TIME (ISO-8601 with offset, or epoch milliseconds)",
    )
    parser.add_argument(
        "--to", dest="time_to", metavar="TIME", help="only anchors captured until TIME"
    )
    parser.add_argument(
        "--bundle", metavar="FILE", help="write the evidence bundle (re-check: verify-bundle)"
    )
    verify_cmd.add_output_options(parser)
    parser.add_argument(
        "--wallet",
        type=Path,
        default=None,
        help=f"the identity to act as (a wallet directory; default ${WALLET_ENV})",
    )
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="NAME|URL",
        help=(
            "a peer to ask, by its name in the network configuration or its URL; repeat "
            "for more (tried in order, the configuration's other peers after them)"
        ),
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"network configuration naming the peers (default {DEFAULT_CONFIG})",
    )
    parser.set_defaults(func=run_verify)


# -- pure parts ----------------------------------------------------------------------------


def parse_time(text: str, option: str) -> int:
    """Epoch milliseconds from ``text``: digits (epoch ms) or ISO-8601 with an offset."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{option} {text!r} is not a time: use ISO-8601 (e.g. 2026-11-27T08:15:00Z) "
            "or epoch milliseconds",
            EXIT_USAGE,
        ) from None
    if moment.tzinfo is None:
        # A bare local time would be read differently on another machine: refuse it.
        raise CliError(f"{option} {text!r} needs a UTC offset (e.g. Z or +01:00)", EXIT_USAGE)
    return int(moment.astimezone(UTC).timestamp() * 1000)


def time_window(time_from: str | None, time_to: str | None) -> tuple[int | None, int | None]:
    lo = parse_time(time_from, "--from") if time_from else None
    hi = parse_time(time_to, "--to") if time_to else None
    if lo is not None and hi is not None and hi < lo:
        raise CliError("--to is before --from", EXIT_USAGE)
    return lo, hi


def spread(count: int, limit: int) -> list[int]:
    """At most ``limit`` indices of ``range(count)``, evenly spread, first and last kept."""
    if count <= limit:
        return list(range(count))
    if limit < 2:
        return [0][:limit]
    step = (count - 1) / (limit - 1)
    return sorted({round(k * step) for k in range(limit)})


def locate_body(
    clip: ClipFingerprints, window: tuple[int | None, int | None], limit: int = LOCATE_MAX_FRAMES
) -> dict[str, Any]:
    """The locate request: the clip's digests and DCT hashes (evenly thinned beyond
    ``limit`` each — a run of matched segments is found from a sample as well)."""
    frames = clip.frames
    digests = [frames[i].digest.hex() for i in spread(len(frames), limit)]
    with_dct = [f.dct_hash for f in frames if f.dct_hash is not None]
    dct = [with_dct[i].hex() for i in spread(len(with_dct), limit)]
    return {"digests": digests, "dct": dct, "from": window[0], "to": window[1]}


@dataclass(frozen=True)
class PeerRef:
    name: str  # the configuration's name, or the URL when the configuration lacks it
    url: str
    org: str  # organisation name; "" when unknown

    @property
    def label(self) -> str:
        if self.name == self.url:
            return self.url
        return f"{self.name} ({self.org})" if self.org else self.name


def peer_plan(
    requested: Sequence[str], config: NetworkConfig | None, own_msp: str
) -> list[PeerRef]:
    """The peers to try, in order: ``requested`` (names or URLs), then the configuration's
    other peers, those of the caller's organisation (MSP id ``own_msp``) first."""
    known: list[PeerRef] = []
    own_orgs: set[str] = set()
    if config is not None:
        known = [PeerRef(p.name, format_url(p.host, p.port), p.org) for p in config.peers]
        own_orgs = {o.name for o in config.organizations if o.msp_id == own_msp}
    by_name = {p.name: p for p in known}
    by_url = {p.url: p for p in known}
    plan: list[PeerRef] = []
    for item in requested:
        if item.startswith("https://"):
            try:
                url = check_url(item)
            except ValueError as exc:
                raise CliError(f"--peer {exc}", EXIT_USAGE) from None
            peer = by_url.get(url, PeerRef(url, url, ""))
        elif item in by_name:
            peer = by_name[item]
        elif config is None:
            raise CliError(
                f"--peer {item!r} is neither an https:// URL nor a peer of a network "
                "configuration (none could be read: name one with --config)",
                EXIT_USAGE,
            )
        else:
            names = ", ".join(sorted(by_name)) or "none"
            raise CliError(
                f"--peer {item!r} is not a peer of the network configuration (peers: {names})",
                EXIT_USAGE,
            )
        if peer.url not in {p.url for p in plan}:
            plan.append(peer)
    rest = [p for p in known if p.url not in {q.url for q in plan}]
    rest.sort(key=lambda p: p.org not in own_orgs)  # stable: configuration order otherwise
    return plan + rest


def witnesses(primary: PeerRef, plan: Sequence[PeerRef]) -> list[PeerRef]:
    """Peers that may cross-check ``primary``: of a known organisation other than its."""
    return [p for p in plan if p.url != primary.url and p.org and p.org != primary.org]


# -- the network ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    sequences: tuple[int, ...]
    capture_start: int | None
    capture_end: int | None
    max_span_ms: int | None = None  # the longest span the peer's evidence route serves


def window_limit(*located: Located) -> int | None:
    """The longest evidence window every one of these peers serves (None: not said)."""
    limits = [x.max_span_ms for x in located if x.max_span_ms is not None]
    return min(limits) if limits else None


@dataclass(frozen=True)
class Verdictless:
    """No evidence to check: ``UNVERIFIABLE`` for this reason."""

    reason: str


@dataclass(frozen=True)
class Fetched:
    bundle: EvidenceBundle
    primary: PeerRef
    witness: PeerRef
    span: tuple[int, int]  # the capture span both peers served the evidence for
    windows: int = 1  # consecutive evidence windows fetched, each cross-checked, merged


class _Skip(Exception):
    """This peer cannot serve: try the next one (the message says why)."""


def _opt_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise NodeProtocolError(f"{what} is not an integer")
    return value


def parse_located(answer: dict[str, Any], where: str) -> Located:
    segments = answer.get("segments")
    if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
        raise NodeProtocolError(f"{where} answered locate without a segments list")
    sequences = tuple(
        int(_opt_int(s.get("sequence"), f"{where}'s segment sequence") or 0) for s in segments
    )
    start = _opt_int(answer.get("captureStart"), f"{where}'s captureStart")
    end = _opt_int(answer.get("captureEnd"), f"{where}'s captureEnd")
    if (start is None) != (end is None) or (start is not None and end is not None and end < start):
        raise NodeProtocolError(f"{where} answered locate with an invalid span")
    limit = _opt_int(answer.get("maxEvidenceSpanMs"), f"{where}'s maxEvidenceSpanMs")
    if limit is not None and limit < 1000:
        raise NodeProtocolError(f"{where} answered locate with an evidence limit under 1 s")
    return Located(sequences, start, end, limit)


class _Network:
    """Calls to the peers over one mutual-TLS session, as the wallet's identity."""

    def __init__(self, session: aiohttp.ClientSession, camera: str, tls_hint: str = "") -> None:
        self.session = session
        self.tls_hint = tls_hint
        self.camera = camera
        self.base = f"{API}/cameras/{quote(camera, safe='')}"

    def _what(self, peer: PeerRef) -> str:
        return f"peer {peer.label}" if peer.name == peer.url else f"peer {peer.label} at {peer.url}"

    async def locate(self, peer: PeerRef, body: dict[str, Any]) -> Located:
        answer = await call_json(
            self.session,
            "POST",
            peer.url,
            f"{self.base}/locate",
            what=self._what(peer),
            tls_hint=self.tls_hint,
            data=json.dumps(body).encode(),
            content_type="application/json",
            timeout=CALL_TIMEOUT_S,
        )
        return parse_located(answer, peer.label)

    async def evidence(self, peer: PeerRef, start: int, end: int) -> EvidenceBundle:
        raw = await call_bytes(
            self.session,
            "GET",
            peer.url,
            f"{self.base}/evidence?from={start}&to={end}",
            what=self._what(peer),
            tls_hint=self.tls_hint,
            timeout=CALL_TIMEOUT_S,
        )
        try:
            return read_bundle(raw)
        except BundleError as exc:
            raise NodeProtocolError(f"{peer.label} served an evidence bundle that {exc}") from None

    async def header_hash(self, peer: PeerRef, number: int) -> bytes | None:
        """The hash of block ``number``'s header at ``peer`` (None: it has no such block)."""
        try:
            answer = await call_json(
                self.session,
                "GET",
                peer.url,
                f"{API}/blocks/{number}/header",
                what=self._what(peer),
                tls_hint=self.tls_hint,
                timeout=CALL_TIMEOUT_S,
            )
        except NodeRefused as exc:
            if exc.status == 404 and exc.code != "http_404":
                return None
            raise
        value = answer.get("hash")
        try:
            if not isinstance(value, str):
                raise ValueError
            return bytes.fromhex(value)
        except ValueError:
            raise NodeProtocolError(
                f"{peer.label} answered a block header without a hash"
            ) from None


def _skippable(exc: NodeClientError) -> bool:
    """A failure of the peer, not an answer: try another peer."""
    if isinstance(exc, NodeUnreachable | NodeTLSError | NodeProtocolError):
        return True
    if isinstance(exc, NodeRefused):
        # 5xx: the peer failed; a 404/405 without a code: no such route (an older peer);
        # records_not_stored: the camera uploaded those frame records to other peers.
        return exc.status >= 500 or exc.code in ("http_404", "http_405", "records_not_stored")
    return False


def _said(exc: NodeRefused) -> str:
    return f"{exc.code}: {exc.message}" if exc.message else exc.code


def _skip(exc: NodeClientError) -> str:
    """Why a peer is passed over for the next one; CliError (exit 1) when the failure is
    an answer that another peer would give too (module docstring: which failures skip)."""
    if not _skippable(exc):
        raise CliError(str(exc), EXIT_FAILURE) from None
    return str(exc)


def _no_access(peer: PeerRef, camera: str, exc: NodeRefused) -> Verdictless:
    return Verdictless(f"no access to camera {camera}: {peer.label} refused: {_said(exc)}")


def union(*spans: Located) -> tuple[int, int] | None:
    """The capture span covering every located span (None: nothing located anywhere)."""
    found = [
        (x.capture_start, x.capture_end)
        for x in spans
        if x.capture_start is not None and x.capture_end is not None
    ]
    if not found:
        return None
    return min(a for a, _ in found), max(b for _, b in found)


@dataclass(frozen=True)
class _NextPrimary:
    """The first peer cannot serve the evidence the clip needs: ask another first."""

    reason: str


async def fetch_evidence(
    plan: Sequence[PeerRef],
    context: ssl.SSLContext,
    camera: str,
    body: dict[str, Any],
    *,
    note: Any = None,
    tls_hint: str = "",
) -> Fetched | Verdictless:
    """Locate, fetch and cross-check (module docstring, steps 2 to 4).

    The first peer that answers locates the clip; a peer of another organisation (the
    witness) locates it too, so that neither can hide an anchor by locating short of
    it, nor wrongly claim that nothing matches. Both then serve the evidence for the
    union of the two spans, and every anchor overlapping it must be in both bundles.
    """
    say = note if note is not None else (lambda text: None)
    failures: list[str] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context),
        timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S),
    ) as session:
        net = _Network(session, camera, tls_hint)
        for primary in plan:
            try:
                say(f"locating the clip among camera {camera}'s anchors at {primary.label}")
                located = await net.locate(primary, body)
            except NodeClientError as exc:
                if isinstance(exc, NodeRefused) and exc.status == 403:
                    return _no_access(primary, camera, exc)
                failures.append(_skip(exc))
                why = _said(exc) if isinstance(exc, NodeRefused) else str(exc)
                say(f"{primary.label} cannot serve ({why}); trying the next peer")
                continue
            outcome = await _with_witness(net, primary, located, plan, body, say)
            if isinstance(outcome, _NextPrimary):
                failures.append(outcome.reason)
                say(f"{outcome.reason}; trying the next peer")
                continue
            return outcome
    tried = "; ".join(failures) or "no peers to ask"
    raise CliError(f"no peer could serve the evidence: {tried}", EXIT_FAILURE)


async def _with_witness(
    net: _Network,
    primary: PeerRef,
    located: Located,
    plan: Sequence[PeerRef],
    body: dict[str, Any],
    say: Any,
) -> Fetched | Verdictless | _NextPrimary:
    """The evidence of ``primary`` confirmed by a witness of another organisation;
    Verdictless if they disagree (or nothing matches at either); CliError (exit 1) if
    no witness can be asked."""
    candidates = witnesses(primary, plan)
    failures: list[str] = []
    served: dict[tuple[int, int], EvidenceBundle] = {}
    for witness in candidates:
        say(f"cross-checking with {witness.label}")
        try:
            seen_there = await net.locate(witness, body)
        except NodeClientError as exc:
            if isinstance(exc, NodeRefused) and exc.status == 403:
                return _access_disagreement(primary, witness, exc)
            failures.append(_skip(exc))
            continue
        span = union(located, seen_there)
        if span is None:
            return Verdictless(
                f"no anchors of camera {net.camera} match this clip (located at "
                f"{primary.label} and {witness.label})"
            )
        limit = window_limit(located, seen_there)
        pieces: list[EvidenceBundle] | Verdictless | _NextPrimary | None
        while True:
            try:
                pieces = await _windows(net, primary, witness, span, limit, served, say)
            except _Shorter as exc:
                limit = exc.limit  # a peer refused the window as too long: halve it
                continue
            except _Skip as exc:
                failures.append(str(exc))
                pieces = None
            break
        if pieces is None:
            continue
        if not isinstance(pieces, list):
            return pieces
        try:
            merged = merge_bundles(pieces)
        except MergeError as exc:
            return Verdictless(
                f"{primary.label} serves inconsistent evidence of camera {net.camera} for "
                f"consecutive windows of the clip: {exc}"
            )
        return Fetched(merged, primary, witness, span, len(pieces))
    if not candidates:
        raise CliError(
            f"cannot cross-check the evidence of {primary.label}: no peer of another "
            "organisation is known (name one with --peer, or give the network --config)",
            EXIT_FAILURE,
        )
    raise CliError(
        f"cannot cross-check the evidence of {primary.label}: no peer of another "
        f"organisation could serve it: {'; '.join(failures)}",
        EXIT_FAILURE,
    )


class _Shorter(Exception):
    """A peer refused a window as too long (``range_too_large``): retry with ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


def _too_long(exc: NodeClientError, window: tuple[int, int]) -> _Shorter | None:
    """The retry for a ``range_too_large`` refusal of ``window`` (half as long), or None
    (another refusal, or a window of a second or less: no shorter one is asked for)."""
    length = window[1] - window[0]
    if isinstance(exc, NodeRefused) and exc.code == "range_too_large" and length > 1000:
        return _Shorter(max(1000, length // 2))
    return None


async def _windows(
    net: _Network,
    primary: PeerRef,
    witness: PeerRef,
    span: tuple[int, int],
    limit: int | None,
    served: dict[tuple[int, int], EvidenceBundle],
    say: Any,
) -> list[EvidenceBundle] | Verdictless | _NextPrimary:
    """The primary's evidence for ``span`` in consecutive windows of at most ``limit``
    ms (one window when None), each cross-checked with ``witness`` as a whole span is.
    Raises _Skip (the witness cannot serve) or _Shorter (a peer wants shorter windows)."""
    pieces: list[EvidenceBundle] = []
    start = span[0]
    while True:
        end = span[1] if limit is None else min(span[1], start + limit)
        window = (start, end)
        if window != span:
            say(f"evidence window {len(pieces) + 1}: capture {start}..{end} ms")
        ours = served.get(window)
        if ours is None:
            try:
                ours = await net.evidence(primary, *window)
            except NodeClientError as exc:
                shorter = _too_long(exc, window)
                if shorter is not None:
                    raise shorter from None
                if isinstance(exc, NodeRefused) and exc.status == 403:
                    return _no_access(primary, net.camera, exc)
                if isinstance(exc, NodeRefused) and exc.status == 404 and not _skippable(exc):
                    # e.g. no_anchors where the witness located some: behind, or hiding
                    # them; another first peer will tell (this one may then witness).
                    return _NextPrimary(f"{primary.label} serves no evidence: {_said(exc)}")
                return _NextPrimary(_skip(exc))
            if not ours.anchors:
                return Verdictless(
                    f"{primary.label} located the clip in camera {net.camera}'s anchors but "
                    "served evidence without anchors"
                )
            served[window] = ours
        try:
            theirs = await _witness_bundle(net, witness, window, ours)
        except NodeClientError as exc:
            shorter = _too_long(exc, window)
            if shorter is not None:
                raise shorter from None
            if isinstance(exc, NodeRefused) and exc.status == 403:
                return _access_disagreement(primary, witness, exc)
            raise _Skip(_skip(exc)) from None
        if isinstance(theirs, Verdictless):
            return Verdictless(
                f"the peers disagree: {primary.label} serves the anchors of camera "
                f"{net.camera} {theirs.reason}"
            )
        diffs = compare_bundles(ours, theirs, primary.label, witness.label, window)
        if diffs:
            more = f" (and {len(diffs) - 1} more differences)" if len(diffs) > 1 else ""
            return Verdictless(
                f"the peers disagree: {primary.label} and {witness.label} serve different "
                f"evidence: {diffs[0]}{more}"
            )
        pieces.append(ours)
        if end >= span[1]:
            return pieces
        start = next_window_start(ours, window)


def _access_disagreement(primary: PeerRef, witness: PeerRef, exc: NodeRefused) -> Verdictless:
    return Verdictless(
        f"the peers disagree on access: {primary.label} served the evidence, "
        f"{witness.label} refused: {_said(exc)}"
    )


async def _witness_bundle(
    net: _Network, witness: PeerRef, span: tuple[int, int], ours: EvidenceBundle
) -> EvidenceBundle | Verdictless:
    """The witness's bundle for ``span`` once its ledger holds the first peer's last
    anchoring block (waiting up to :data:`CATCH_UP_S`); a Verdictless (the end of a
    sentence naming the witness) if it holds that block but serves no anchors; _Skip if
    it is still behind."""
    needed = max(anchoring_blocks(ours), default=0)
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        try:
            theirs: EvidenceBundle | None = await net.evidence(witness, *span)
        except NodeRefused as exc:
            if exc.status != 404 or _skippable(exc):
                raise
            theirs = None  # no anchors there (yet?)
        if theirs is not None and theirs.metadata.ledger_height > needed:
            return theirs
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.5)
    if theirs is not None:
        raise _Skip(
            f"{witness.label} is behind (height {theirs.metadata.ledger_height}, "
            f"the evidence is in block {needed})"
        )
    # No anchors at the witness: behind, or hiding them? Its header of the block says.
    seen = await net.header_hash(witness, needed)
    if seen is None:
        raise _Skip(f"{witness.label} does not have block {needed} yet")
    ours_hash = {h.number: h.hash() for h in ours.headers}.get(needed)
    differs = "" if seen == ours_hash else f" (header hash {short_hash(seen)})"
    return Verdictless(
        f"in block {needed}, {witness.label} holds block {needed}{differs} but serves no "
        "anchors for this time"
    )


# -- the command ---------------------------------------------------------------------------


def _load_identity(
    args: argparse.Namespace, config: NetworkConfig | None
) -> tuple[str, ssl.SSLContext, str]:
    """The wallet's MSP id and a mutual-TLS client context for the peers.

    A wallet trusts its own organisation's TLS root only; to cross-check with a peer of
    another organisation the client also trusts the TLS roots of every organisation of
    the channel, from the genesis block of the network configuration when it is at
    hand (as the nodes themselves do). Trusting a TLS root only lets us talk to that
    peer: what it serves is still checked against the orderers' and camera's signatures.
    """
    path = args.wallet or (Path(os.environ[WALLET_ENV]) if os.environ.get(WALLET_ENV) else None)
    if path is None:
        raise CliError(f"say who you are: --wallet DIR (or set {WALLET_ENV})", EXIT_USAGE)
    wallet = Wallet(path)
    try:
        loaded = wallet.load()
        files = wallet.load_tls()
        trusted = files.ca_file.read_bytes()
    except (StoreError, OSError, ValueError) as exc:
        raise CliError(f"cannot use wallet {path}: {exc}", EXIT_FAILURE) from None
    hint = (
        "this wallet trusts only its own organisation's TLS root; give the network --config "
        "whose nodes directory holds the channel's genesis block to trust the others"
    )
    if config is not None:
        try:
            channel = NetworkMaterial.locate(config).channel_config()
        except (GenesisError, OSError, ValueError):
            pass  # no local copy of the channel: the wallet's own root only
        else:
            trusted = tls.bundle([trusted, tls.trust_bundle(channel)])
            hint = ""
    try:
        context = tls.client_context(files, trusted)
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise CliError(f"cannot use wallet {path}: {exc}", EXIT_FAILURE) from None
    return loaded.msp_id, context, hint


def _load_config(path: Path | None, peers: Sequence[str]) -> NetworkConfig | None:
    """The network configuration; with ``--peer`` and no ``--config`` a missing default
    configuration is no error (the peers were named)."""
    target = path or DEFAULT_CONFIG
    try:
        return load_network_config(target)
    except (NetworkConfigError, OSError) as exc:
        if path is None and peers:
            return None
        hint = "name it with --config FILE" if path is None else "fix it"
        raise CliError(
            f"cannot read the network configuration: {exc} ({hint})", EXIT_USAGE
        ) from None


def run_verify(args: argparse.Namespace) -> int:
    command = verify_cmd.command_line()
    camera = args.camera.strip()
    if not camera or "/" in camera:
        raise CliError(f"--camera {args.camera!r} is not a camera id", EXIT_USAGE)
    clip_path = Path(args.clip)
    if not clip_path.is_file():
        raise CliError(f"clip {clip_path} does not exist", EXIT_USAGE)
    window = time_window(args.time_from, args.time_to)
    config = _load_config(args.config, args.peer)
    own_msp, context, tls_hint = _load_identity(args, config)
    plan = peer_plan(args.peer, config, own_msp)
    if not plan:
        raise CliError("no peer to ask: name one with --peer", EXIT_USAGE)

    # Decode once, with the perceptual fingerprint of every frame: the anchored digests
    # are not known before locating, and a re-encoded copy is located by the latter.
    clip = verify_cmd.decode_clip(clip_path, None)
    if not clip.frames:
        raise CliError(f"clip {clip_path} has no video frames", EXIT_FAILURE)
    chatty = not args.quiet and sys.stderr.isatty()

    def note(text: str) -> None:
        if chatty:
            print(f"cctvchain: {text}", file=sys.stderr)

    try:
        outcome = asyncio.run(
            fetch_evidence(
                plan, context, camera, locate_body(clip, window), note=note, tls_hint=tls_hint
            )
        )
    except NodeClientError as exc:  # e.g. a bad URL; peers' failures are handled inside
        raise CliError(str(exc), EXIT_FAILURE) from None
    if isinstance(outcome, Verdictless):
        result = unverifiable(
            camera, outcome.reason, clip=clip.info, source="network", command=command
        )
        verify_cmd.emit(result, args.quiet)
        verify_cmd.write_outputs(
            result, json_path=args.json, html_path=args.report, clip_path=clip_path
        )
        return result.exit_code
    bundle = outcome.bundle
    if bundle.metadata.camera_id != camera:
        result = unverifiable(
            camera,
            f"{outcome.primary.label} served evidence of camera {bundle.metadata.camera_id!r}",
            clip=clip.info,
            source="network",
            command=command,
        )
        verify_cmd.emit(result, args.quiet)
        verify_cmd.write_outputs(
            result, json_path=args.json, html_path=args.report, clip_path=clip_path
        )
        return result.exit_code
    windows = f" (in {outcome.windows} windows of capture)" if outcome.windows > 1 else ""
    source = (
        f"{outcome.primary.label} {outcome.primary.url}, "
        f"cross-checked with {outcome.witness.label} {outcome.witness.url}{windows}"
    )
    bundle = replace(bundle, metadata=replace(bundle.metadata, command=command, source=source))
    if not args.quiet:
        print(f"cctvchain: evidence from {source}", file=sys.stderr)
    return verify_cmd.finish(
        bundle,
        clip_path=clip_path,
        clip=clip,
        json_path=args.json,
        html_path=args.report,
        bundle_path=args.bundle,
        quiet=args.quiet,
        source="network",
        command=command,
    )
