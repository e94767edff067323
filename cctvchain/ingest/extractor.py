"""The frame-extractor plugin: one camera's stream in, signed and chained anchors out.

::

    capture thread                      asyncio tasks
    --------------                      -------------
    VideoSource (RTSP over TCP / file)
      -> exact digest of every frame    anchor:  oldest spooled segment not yet anchored
      -> perceptual of sampled frames            -> AnchorSegment through a gateway, as
      -> Segmenter (S-second windows)               the camera's identity; retried with
      -> Spool.put (fsync) ------------>            back-off until committed, in order
                                        upload:  oldest anchored segment -> its frame
      -> gaps -> GapQueue.put (fsync)              records to peers of 2 organisations
                                                 -> Spool.ack (only now)
                                        gaps:    ReportGap for each queued gap
                                        metrics: a log line and metrics.json

**Nothing sealed is lost.** Every segment is written to the durable
:class:`~cctvchain.ingest.spool.Spool` before anything is sent, and acknowledged (removed)
only after its anchor committed *and* peers of ``record_copies`` (2) organisations
confirmed they hold its frame records. While a gateway is unreachable (or answers 5xx)
segments queue in order and drain, in order, when it returns. A refusal as
``SEQUENCE_REPLAY`` — the segment was committed, but the extractor did not learn it (it
was killed, or the answer was lost) — is checked against the chain head
(``GetAnchorHead``: same sequence, same segment hash) and counts as done; a head that
disagrees with the spool stops the extractor (another extractor anchors this camera).

**Resuming.** On start the chain continues from the spool's head (the newest segment
written, pending or acknowledged) or, for a new spool, from the ledger's head
(``GetAnchorHead``, readable by the camera itself); when both are known they must agree.
Spooled segments at or below the ledger's head were anchored already and only wait for
their record uploads. A spool may be resumed without the network (e.g. after a crash
during an outage); a new spool waits until the ledger can be asked.

**Gaps.** The source is reconnected with exponential back-off after any error, timeout
or end of stream (a file source ends instead). Every span without frames — the source
lost and regained, the extractor stopped or killed and restarted, timestamps that jump —
is logged as ``gap: no frames from T1 to T2 (reason)`` (capture times of the frames on
either side) and recorded on the ledger by a ``ReportGap`` transaction of the camera
(:mod:`cctvchain.chaincode.cctv.gaps`), queued durably like the segments
(:class:`~cctvchain.ingest.gapqueue.GapQueue`). The partial segment before a loss is
sealed at once, so a segment never spans a gap.

**Capture times** come from :meth:`VideoSource.capture_time_ms` for a stream (the
camera's RTCP clock, else the host's). A file is taken as a recording that ended when
ingest started (``capture_origin_ms`` overrides it; ``realtime`` paces it like a live
camera, its frames captured "now"). Frames whose capture time does not move past the
last one (a camera clock stepped back) are dropped and counted, never anchored out of
order.

**Metrics** (:class:`Metrics`, logged every ``metrics_interval_s`` and written to
``metrics.json`` in the spool directory): frames seen, fingerprinted, sampled and
dropped; segments sealed, spooled (and pending), anchored (and already-anchored
replays), uploaded; gaps seen and reported; reconnects; lag (now minus the capture end
of the last anchored segment).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import av

from cctvchain.chaincode.cctv.model import SamplingPolicy
from cctvchain.client.transaction import ClientIdentity
from cctvchain.ingest import perceptual
from cctvchain.ingest.gapqueue import GapQueue, GapReport
from cctvchain.ingest.records_client import RecordsClient, upload_body
from cctvchain.ingest.segment import DEFAULT_SEGMENT_MS, GENESIS_HASH, SealedSegment, Segmenter
from cctvchain.ingest.spool import ChainHead, Spool
from cctvchain.media import DecodedFrame, MediaError, VideoSource, is_stream_url
from cctvchain.msp.certref import UnknownCertificateReference
from cctvchain.node.errors import NodeClientError, NodeRefused
from cctvchain.peernode.gateway_client import (
    Gateway,
    GatewayRefused,
    SubmitResult,
    TransactionInvalid,
)

log = logging.getLogger("cctvchain.ingest")

T = TypeVar("T")

CONTRACT: Final = "cctv"
UNKNOWN_CERTIFICATE_REFERENCE: Final = UnknownCertificateReference.code
METRICS_FILE: Final = "metrics.json"
RUNNING_MARK: Final = "running"
GAPS_DIR: Final = "gaps"
# A refusal that retrying cannot cure: the extractor stops (its segments stay spooled).
FATAL_CODES: Final = frozenset(
    {
        "WRONG_IDENTITY",
        "POLICY_MISMATCH",
        "BROKEN_CHAIN",
        "SEQUENCE_GAP",
        "CAPTURE_OVERLAP",
        "MALFORMED_SEGMENT",
        "SEGMENT_TOO_LARGE",
        "CAMERA_NOT_APPROVED",
        "CAMERA_DECOMMISSIONED",
        "UNKNOWN_CAMERA",
        "ACCESS_DENIED",
        "certificate_revoked",
        "certificate_expired",
        "unknown_contract",
        "unknown_function",
    }
)
DEFAULT_FRAME_MS: Final = 40  # when the stream does not say its rate
JUMP_MIN_MS: Final = 1000  # a pts step this long (and 5 frames) inside a session is a gap


class ExtractorError(Exception):
    """The extractor cannot go on (one line; segments stay in the spool)."""


@dataclass(frozen=True)
class ExtractorSettings:
    camera_id: str
    source: str
    spool_dir: Path
    policy: SamplingPolicy = field(default_factory=lambda: SamplingPolicy("normal", 1))
    segment_ms: int = DEFAULT_SEGMENT_MS
    duration_s: float | None = None  # stop capturing after this long (tests, demos)
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 10.0
    retry_min_s: float = 0.5
    retry_max_s: float = 5.0
    metrics_interval_s: float = 10.0
    drain_timeout_s: float = 60.0  # at stop: how long to wait for the spool to drain
    record_copies: int = 2  # organisations that must hold a segment's records
    capture_origin_ms: int | None = None  # files: the camera time of pts 0
    realtime: bool = False  # files: pace frames by their timestamps
    decoder_threads: int = 0


@dataclass(frozen=True)
class RecordPeer:
    url: str
    msp_id: str | None = None  # known from the network's configuration, else learnt


@dataclass(frozen=True)
class NetworkSettings:
    identity: ClientIdentity  # the camera's enrolled identity (signs the anchors)
    ssl_context: ssl.SSLContext  # its TLS certificate, trusting the channel's TLS roots
    gateways: tuple[str, ...]  # peer URLs, tried in turn
    record_peers: tuple[RecordPeer, ...]
    timeout_s: float = 40.0


@dataclass
class Metrics:
    frames_seen: int = 0
    frames_fingerprinted: int = 0
    frames_sampled: int = 0
    frames_dropped: int = 0
    segments_sealed: int = 0
    segments_spooled: int = 0
    segments_anchored: int = 0
    segments_already_anchored: int = 0
    segments_uploaded: int = 0
    spool_pending: int = 0
    gaps_seen: int = 0
    gaps_reported: int = 0
    reconnects: int = 0
    last_anchored_sequence: int = -1
    last_anchored_capture_end_ms: int | None = None
    lag_ms: int | None = None

    def line(self) -> str:
        lag = "-" if self.lag_ms is None else f"{self.lag_ms / 1000:.1f} s"
        return (
            f"metrics: frames seen {self.frames_seen}, fingerprinted "
            f"{self.frames_fingerprinted}, sampled {self.frames_sampled}, dropped "
            f"{self.frames_dropped}; segments sealed {self.segments_sealed}, spooled "
            f"{self.segments_spooled} ({self.spool_pending} pending), anchored "
            f"{self.segments_anchored} (+{self.segments_already_anchored} already), records "
            f"uploaded {self.segments_uploaded}; gaps {self.gaps_seen} "
            f"({self.gaps_reported} reported); reconnects {self.reconnects}; lag {lag}"
        )


@dataclass(frozen=True)
class ExtractorResult:
    metrics: Metrics
    spool_pending: int
    gaps_pending: int
    error: str | None = None


def iso_ms(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Backoff:
    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high
        self.delay = low

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.high)
        return delay

    def reset(self) -> None:
        self.delay = self.low


# -- the ledger, through the gateways ----------------------------------------------------


class ChainClient:
    """The camera's gateway calls, failing over between gateways in turn."""

    def __init__(self, network: NetworkSettings) -> None:
        if not network.gateways:
            raise ExtractorError("no gateway peer to submit anchors through")
        self.network = network
        self._index = 0
        self._gateways: dict[str, Gateway] = {}
        self.min_height = 0
        # Once a block carried the camera's certificate (one of its anchors committed in
        # this run), its transactions name it by reference: 32 bytes instead of ~800.
        self.by_reference = False

    @property
    def url(self) -> str:
        return self.network.gateways[self._index % len(self.network.gateways)]

    def rotate(self) -> None:
        self._index += 1

    async def _gateway(self) -> Gateway:
        url = self.url
        gateway = self._gateways.get(url)
        if gateway is None:
            gateway = Gateway(url, self.network.ssl_context, timeout=self.network.timeout_s)
            await gateway.__aenter__()
            self._gateways[url] = gateway
        gateway.min_height = max(gateway.min_height, self.min_height)
        return gateway

    async def close(self) -> None:
        for gateway in self._gateways.values():
            await gateway.__aexit__(None, None, None)
        self._gateways.clear()

    async def _call(self, call: Callable[[Gateway], Awaitable[T]]) -> T:
        gateway = await self._gateway()
        try:
            return await call(gateway)
        except GatewayRefused as exc:
            if exc.status >= 500:
                self.rotate()
            raise
        except NodeClientError:
            self.rotate()
            raise
        finally:
            self.min_height = max(self.min_height, gateway.min_height)

    def identity(self) -> ClientIdentity:
        """The camera's identity as its transactions carry it (by reference or in full)."""
        identity = self.network.identity
        return identity.referenced() if self.by_reference else identity

    def _unknown_reference(self, exc: Exception) -> bool:
        """Whether ``exc`` says a node does not know the camera's certificate reference
        (a node behind, or a ledger rebuilt elsewhere): then resend in full."""
        if not self.by_reference:
            return False
        if isinstance(exc, GatewayRefused):
            unknown = exc.code == UNKNOWN_CERTIFICATE_REFERENCE
        elif isinstance(exc, TransactionInvalid):
            unknown = exc.result.validation_code_name == "UNKNOWN_CERTIFICATE_REFERENCE"
        else:
            unknown = False
        if unknown:
            log.info("a node does not know the camera's certificate reference: sending it in full")
            self.by_reference = False
        return unknown

    async def submit(self, function: str, args: Sequence[str]) -> SubmitResult:
        identity = self.identity()
        try:
            result = await self._call(lambda g: g.submit(identity, CONTRACT, function, args))
        except (GatewayRefused, TransactionInvalid) as exc:
            if not self._unknown_reference(exc):
                if isinstance(exc, TransactionInvalid):
                    self.by_reference = True  # committed (invalid): it carried the PEM
                raise
            full = self.identity()
            result = await self._call(lambda g: g.submit(full, CONTRACT, function, args))
        self.by_reference = True
        return result

    async def evaluate(self, function: str, args: Sequence[str]) -> Any:
        identity = self.identity()
        try:
            result = await self._call(lambda g: g.evaluate(identity, CONTRACT, function, args))
        except GatewayRefused as exc:
            if not self._unknown_reference(exc):
                raise
            full = self.identity()
            result = await self._call(lambda g: g.evaluate(full, CONTRACT, function, args))
        return result.json()

    async def anchor_head(self, camera_id: str) -> ChainHead | None:
        """The camera's chain head on the ledger (None before its first anchor)."""
        head = await self.evaluate("GetAnchorHead", [camera_id])
        if not isinstance(head, dict) or not isinstance(head.get("sequence"), int):
            raise ExtractorError(f"the peer at {self.url} answered no chain head")
        if head["sequence"] < 0:
            return None
        return ChainHead(
            camera_id,
            head["sequence"],
            bytes.fromhex(str(head["segmentHash"])),
            int(head.get("captureEnd", 0)),
        )


# -- the extractor ----------------------------------------------------------------------


class Extractor:
    def __init__(self, settings: ExtractorSettings, network: NetworkSettings | None) -> None:
        if settings.segment_ms <= 0:
            raise ExtractorError("segments last a positive number of seconds")
        if settings.record_copies < 1:
            raise ExtractorError("frame records go to at least one organisation's peer")
        self.settings = settings
        self.network = network
        self.metrics = Metrics()
        self.spool = Spool(settings.spool_dir)
        self.gaps = GapQueue(settings.spool_dir / GAPS_DIR)
        for torn in self.spool.torn:
            log.warning("spool: set aside a damaged entry %s", torn.name)
        self._lock = threading.Lock()  # the spool: capture thread and tasks
        self._stopping = threading.Event()
        self._capture_done = threading.Event()
        self._fatal: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_anchor = asyncio.Event()
        self._wake_upload = asyncio.Event()
        self._wake_gaps = asyncio.Event()
        self._anchored_upto = -1  # every spooled segment up to this one is on the ledger
        self._blocks: dict[int, int] = {}  # sequence -> block it was committed in
        self._segmenter: Segmenter | None = None
        self._last_capture: int | None = None  # of the last frame fingerprinted
        self._gap_reason: str | None = None  # why frames stopped, until they resume
        self._had_frames = False  # in the current source session
        self._sessions = 0  # source sessions that delivered frames
        self._record_orgs: dict[str, str] = {
            p.url: p.msp_id for p in (network.record_peers if network else ()) if p.msp_id
        }

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop capturing; the spool drains (up to ``drain_timeout_s``) and run returns."""
        if not self._stopping.is_set():
            log.info("stopping: sealing the open segment and draining the spool")
        self._stopping.set()
        self._notify_all()

    def _fail(self, message: str) -> None:
        if self._fatal is None:
            self._fatal = message
            log.error("%s", message)
        self._stopping.set()
        self._notify_all()

    def _notify_all(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for event in (self._wake_anchor, self._wake_upload, self._wake_gaps):
            loop.call_soon_threadsafe(event.set)

    def _spooled(self, call: Callable[[], T]) -> T:
        with self._lock:
            return call()

    def _get(self, sequence: int) -> SealedSegment:
        with self._lock:
            return self.spool.get(sequence)

    def _ack(self, sequence: int) -> None:
        with self._lock:
            self.spool.ack(sequence)

    # -- run -------------------------------------------------------------------------------

    async def run(self) -> ExtractorResult:
        if self.network is None:
            raise ExtractorError("no network to anchor to (see capture_only)")
        network = self.network
        self._loop = asyncio.get_running_loop()
        settings = self.settings
        mark = settings.spool_dir / RUNNING_MARK
        unclean = mark.exists()
        mark.write_text(str(os.getpid()))
        chain = ChainClient(network)
        tasks: list[asyncio.Task[None]] = []
        capture: threading.Thread | None = None
        try:
            async with RecordsClient(network.ssl_context) as records:
                head = await self._resume(chain)
                if head is not None and not self._stopping.is_set():
                    self._gap_reason = (
                        "the extractor restarted after an unclean stop"
                        if unclean
                        else "the extractor was not running"
                    )
                if self._stopping.is_set():
                    return self._result()
                tasks = [
                    asyncio.create_task(self._anchor_loop(chain), name="anchor"),
                    asyncio.create_task(self._upload_loop(records), name="upload"),
                    asyncio.create_task(self._gap_loop(chain), name="gaps"),
                    asyncio.create_task(self._metrics_loop(), name="metrics"),
                ]
                capture = threading.Thread(target=self._capture_main, name="capture", daemon=True)
                capture.start()
                await self._until_done(tasks)
        finally:
            self._stopping.set()
            self._notify_all()
            for task in tasks:
                task.cancel()
            # Errors were handled by _until_done; here the tasks only need to end.
            await asyncio.gather(*tasks, return_exceptions=True)
            if capture is not None:
                await asyncio.to_thread(capture.join)
            await chain.close()
            self._refresh_metrics()
            self._write_metrics()
            log.info("%s", self.metrics.line())
            mark.unlink(missing_ok=True)  # left behind only by a crash or a kill
        return self._result()

    def _result(self) -> ExtractorResult:
        return ExtractorResult(
            self.metrics, self._spooled(lambda: len(self.spool)), len(self.gaps), self._fatal
        )

    async def _until_done(self, tasks: list[asyncio.Task[None]]) -> None:
        """Until capture ended and the spool drained (or the drain timed out), or a task
        failed."""
        loop = asyncio.get_running_loop()
        drain_deadline: float | None = None
        while True:
            for task in tasks:
                if task.done():
                    error = task.exception()
                    if error is not None:
                        if isinstance(error, ExtractorError):
                            self._fail(str(error))
                        else:
                            self._fail(f"internal error in {task.get_name()}: {error!r}")
                        return
            if self._fatal is not None:
                return
            if self._capture_done.is_set():
                if drain_deadline is None:
                    drain_deadline = loop.time() + self.settings.drain_timeout_s
                pending = self._spooled(lambda: len(self.spool))
                if pending == 0 and len(self.gaps) == 0:
                    log.info("spool drained: every segment anchored and its records stored")
                    return
                if loop.time() >= drain_deadline:
                    log.warning(
                        "stopping with %d segment(s) and %d gap report(s) in the spool; "
                        "they are sent on the next start",
                        pending,
                        len(self.gaps),
                    )
                    return
            await asyncio.sleep(0.1)

    # -- resuming --------------------------------------------------------------------------

    async def _resume(self, chain: ChainClient) -> ChainHead | None:
        """Set up the segmenter where the camera's chain stands; the head it continues."""
        camera = self.settings.camera_id
        spool_head = self.spool.head()
        if spool_head is not None and spool_head.camera_id != camera:
            raise ExtractorError(
                f"the spool {self.spool.directory} belongs to camera {spool_head.camera_id}"
            )
        pending = self.spool.pending()
        acked = pending[0] - 1 if pending else (spool_head.sequence if spool_head else -1)
        self._anchored_upto = acked
        ledger: ChainHead | None = None
        known = False
        backoff = Backoff(self.settings.retry_min_s, self.settings.retry_max_s)
        while not self._stopping.is_set():
            try:
                ledger = await chain.anchor_head(camera)
                known = True
                break
            except GatewayRefused as exc:
                if exc.code in FATAL_CODES:
                    raise ExtractorError(
                        f"cannot read camera {camera}'s chain head: {exc}"
                    ) from exc
                reason = str(exc)
            except NodeClientError as exc:
                reason = str(exc)
            if spool_head is not None:
                log.warning(
                    "the ledger is not reachable (%s); resuming from the spool's head, segment %d",
                    reason,
                    spool_head.sequence,
                )
                break
            delay = backoff.next()
            log.warning(
                "waiting for the network to learn camera %s's chain head (%s); retrying in %.1f s",
                camera,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
        if self._stopping.is_set() and not known and spool_head is None:
            return None
        head = spool_head
        if known:
            head = self._reconcile(ledger, spool_head, pending)
        if head is None:
            self._segmenter = Segmenter(
                camera, self.settings.policy, segment_ms=self.settings.segment_ms
            )
            log.info("camera %s starts its chain at segment 0", camera)
        else:
            self._segmenter = Segmenter(
                camera,
                self.settings.policy,
                segment_ms=self.settings.segment_ms,
                sequence=head.sequence + 1,
                previous_hash=head.segment_hash,
                last_capture_ms=head.capture_end_ms,
            )
            self._last_capture = head.capture_end_ms
            log.info(
                "camera %s continues its chain after segment %d (captured up to %s); "
                "%d segment(s) pending in the spool",
                camera,
                head.sequence,
                iso_ms(head.capture_end_ms),
                len(pending),
            )
        return head

    def _spooled_hash(
        self, sequence: int, pending: list[int], head: ChainHead | None
    ) -> bytes | None:
        """The hash the spool knows for ``sequence`` (a pending entry, or the one before)."""
        if sequence == -1:
            return GENESIS_HASH
        if sequence in pending:
            return self.spool.get(sequence).segment_hash
        if pending and sequence == pending[0] - 1:
            return self.spool.get(pending[0]).segment.previous_hash
        if head is not None and sequence == head.sequence:
            return head.segment_hash
        return None

    def _reconcile(
        self, ledger: ChainHead | None, spool_head: ChainHead | None, pending: list[int]
    ) -> ChainHead | None:
        camera = self.settings.camera_id
        on_ledger = -1 if ledger is None else ledger.sequence
        in_spool = -1 if spool_head is None else spool_head.sequence
        acked = self._anchored_upto
        where = f"the spool {self.spool.directory}"
        if on_ledger > in_spool:
            if spool_head is None:
                return ledger  # a new spool: continue the ledger's chain
            raise ExtractorError(
                f"camera {camera}'s chain on the ledger (segment {on_ledger}) is ahead of "
                f"{where} (segment {in_spool}): another extractor anchors this camera; use "
                "its spool, or a new --spool directory"
            )
        if on_ledger < acked:
            raise ExtractorError(
                f"the ledger's chain of camera {camera} ends at segment {on_ledger} but {where} "
                f"has segment {acked} acknowledged: is this the right network?"
            )
        expected = self._spooled_hash(on_ledger, pending, spool_head)
        actual = GENESIS_HASH if ledger is None else ledger.segment_hash
        if expected is None or expected != actual:
            raise ExtractorError(
                f"camera {camera}'s segment {on_ledger} on the ledger is not the one in {where}: "
                "another extractor anchors this camera"
            )
        if on_ledger > acked:
            log.info(
                "segments %d..%d were anchored before the restart; only their records "
                "remain to be uploaded",
                acked + 1,
                on_ledger,
            )
        self._anchored_upto = on_ledger
        return spool_head

    # -- capture (thread) ------------------------------------------------------------------

    def capture_only(self) -> Metrics:
        """Run the capture pipeline in this thread with no network: decode, exact digests,
        sampling and perceptual fingerprints, segments and durable spool writes, exactly
        as :meth:`run` does, continuing the spool's chain (benchmarks and tools)."""
        head = self.spool.head()
        self._segmenter = Segmenter(
            self.settings.camera_id,
            self.settings.policy,
            segment_ms=self.settings.segment_ms,
            sequence=0 if head is None else head.sequence + 1,
            previous_hash=GENESIS_HASH if head is None else head.segment_hash,
            last_capture_ms=None if head is None else head.capture_end_ms,
        )
        self._last_capture = None if head is None else head.capture_end_ms
        self._capture_main()
        if self._fatal is not None:
            raise ExtractorError(self._fatal)
        self._refresh_metrics()
        return self.metrics

    def _capture_main(self) -> None:
        try:
            self._capture()
        except ExtractorError as exc:
            self._fail(str(exc))
        except Exception as exc:
            log.exception("capture failed")
            self._fail(f"capture failed: {exc!r}")
        finally:
            with contextlib.suppress(Exception):
                self._seal()
            self._capture_done.set()
            self._notify_all()

    def _capture(self) -> None:
        settings = self.settings
        streaming = is_stream_url(settings.source)
        started = time.monotonic()
        deadline = None if settings.duration_s is None else started + settings.duration_s
        backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        while not self._stopping.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return
            origin = None if streaming else self._file_origin()
            try:
                source = VideoSource(
                    settings.source,
                    open_timeout_s=settings.open_timeout_s,
                    read_timeout_s=settings.read_timeout_s,
                    threads=settings.decoder_threads,
                    capture_origin_ms=origin,
                )
            except MediaError as exc:
                if not streaming:
                    raise ExtractorError(str(exc)) from None
                self._lost(f"cannot connect: {exc}", backoff)
                continue
            with source:
                reason = self._session(source, deadline, streaming)
            if reason is None or not streaming:
                return  # stopped, duration reached, or the end of a file
            if self._stopping.is_set():
                return
            if self._had_frames:
                backoff.reset()
            self._lost(reason, backoff)

    def _lost(self, reason: str, backoff: Backoff) -> None:
        """The source failed: seal what we have, note the reason, wait to reconnect."""
        self._seal()
        if self._gap_reason is None:  # the first cause of a gap is the one reported
            self._gap_reason = f"source lost: {reason}"
        delay = backoff.next()
        log.warning("source %s: %s; reconnecting in %.1f s", self.settings.source, reason, delay)
        self._stopping.wait(delay)

    def _file_origin(self) -> int:
        settings = self.settings
        if settings.capture_origin_ms is not None:
            origin = settings.capture_origin_ms
        elif settings.realtime:
            origin = time.time_ns() // 1_000_000
        else:
            try:
                with av.open(settings.source) as container:
                    duration_ms = (container.duration or 0) // 1000
            except (av.FFmpegError, OSError) as exc:
                raise ExtractorError(f"cannot open {settings.source}: {exc}") from None
            origin = time.time_ns() // 1_000_000 - duration_ms - 1000
        return origin

    def _session(self, source: VideoSource, deadline: float | None, streaming: bool) -> str | None:
        """Decode one connection's frames; why it ended (None: stop, duration, file end)."""
        settings = self.settings
        rate = source.average_rate
        frame_ms = float(1000 / rate) if rate else float(DEFAULT_FRAME_MS)
        threshold = 1.5 * frame_ms
        jump = max(JUMP_MIN_MS, 5 * frame_ms)
        self._had_frames = False
        shift = 0  # files: moves capture times past the chain's last frame
        paced_from: tuple[float, int] | None = None
        last_pts: int | None = None
        session_frames = 0
        try:
            for frame in source.frames():
                if self._stopping.is_set():
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                self.metrics.frames_seen += 1
                if not streaming and settings.realtime:
                    if paced_from is None:
                        paced_from = (time.monotonic(), frame.pts_ms)
                    wait = paced_from[0] + (frame.pts_ms - paced_from[1]) / 1000 - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                capture = source.capture_time_ms(frame) + shift
                if not self._had_frames:
                    if (
                        not streaming
                        and self._last_capture is not None
                        and capture <= self._last_capture
                    ):
                        shift = self._last_capture + round(frame_ms) - capture
                        capture += shift
                    self._had_frames = True
                    self._sessions += 1
                    if self._sessions > 1:
                        self.metrics.reconnects += 1
                    log.info(
                        "source %s: %s %dx%d %s, clock %s",
                        settings.source,
                        source.codec,
                        frame.width,
                        frame.height,
                        frame.format,
                        source.clock_source,
                    )
                if self._last_capture is not None and capture <= self._last_capture:
                    self.metrics.frames_dropped += 1
                    if (
                        self.metrics.frames_dropped in (1, 10, 100)
                        or self.metrics.frames_dropped % 1000 == 0
                    ):
                        log.warning(
                            "frame captured at %s is not after the last one (%s): dropped "
                            "(%d so far); is the camera's clock stepping back?",
                            iso_ms(capture),
                            iso_ms(self._last_capture),
                            self.metrics.frames_dropped,
                        )
                    continue
                if self._last_capture is not None:
                    step = capture - self._last_capture
                    if self._gap_reason is not None:
                        if step > threshold:
                            self._record_gap(self._last_capture, capture, self._gap_reason)
                    elif (
                        last_pts is not None
                        and session_frames > 1
                        and frame.pts_ms - last_pts > jump
                    ):
                        # (Not after a session's first frame: an RTSP server may hand a
                        # joining client its last keyframe before the live frames.)
                        self._seal()
                        self._record_gap(
                            self._last_capture, capture, "the stream's timestamps jumped"
                        )
                self._gap_reason = None
                last_pts = frame.pts_ms
                session_frames += 1
                self._fingerprint(frame, capture)
        except MediaError as exc:
            return str(exc)
        return "the stream ended" if streaming else None

    def _fingerprint(self, frame: DecodedFrame, capture: int) -> None:
        segmenter = self._segmenter
        assert segmenter is not None
        sampled = False

        def perceptual_of() -> perceptual.Perceptual:
            nonlocal sampled
            sampled = True
            return perceptual.fingerprint(frame.thumbnail())

        sealed = segmenter.add(frame.pts_ms, capture, frame.digest, perceptual_of)
        self._last_capture = capture
        self.metrics.frames_fingerprinted += 1
        if sampled:
            self.metrics.frames_sampled += 1
        if sealed is not None:
            self._put(sealed)

    def _seal(self) -> None:
        segmenter = self._segmenter
        if segmenter is None:
            return
        sealed = segmenter.flush()
        if sealed is not None:
            self._put(sealed)

    def _put(self, sealed: SealedSegment) -> None:
        segment = sealed.segment
        self._spooled(lambda: self.spool.put(sealed))
        self.metrics.segments_sealed += 1
        self.metrics.segments_spooled += 1
        log.info(
            "segment %d sealed: %d frames (%d sampled), captured %s .. %s; spooled",
            segment.sequence,
            segment.frame_count,
            sum(r.perceptual is not None for r in sealed.records),
            iso_ms(segment.capture_start_ms),
            iso_ms(segment.capture_end_ms),
        )
        self._notify_all()

    def _record_gap(self, start: int, end: int, reason: str) -> None:
        segmenter = self._segmenter
        after = -1 if segmenter is None else segmenter.next_sequence - 1
        log.warning("gap: no frames from %s to %s (%s)", iso_ms(start), iso_ms(end), reason)
        self.gaps.put(GapReport(start, end, after, reason[:200]))
        self.metrics.gaps_seen += 1
        self._notify_all()

    # -- anchoring -------------------------------------------------------------------------

    async def _anchor_loop(self, chain: ChainClient) -> None:
        while True:
            self._wake_anchor.clear()  # before looking: a later put wakes us again
            upto = self._anchored_upto
            todo = [s for s in self._spooled(self.spool.pending) if s > upto]
            if not todo:
                await self._wake_anchor.wait()
                continue
            sequence = todo[0]
            sealed = await asyncio.to_thread(self._get, sequence)
            await self._anchor(chain, sealed)
            self._wake_upload.set()

    async def _anchor(self, chain: ChainClient, sealed: SealedSegment) -> None:
        segment = sealed.segment
        sequence = segment.sequence
        payload = base64.b64encode(segment.encode()).decode("ascii")
        backoff = Backoff(self.settings.retry_min_s, self.settings.retry_max_s)
        while True:
            try:
                result = await chain.submit("AnchorSegment", [payload])
            except TransactionInvalid as exc:
                # E.g. MVCC_READ_CONFLICT: an earlier attempt committed first.
                log.warning("segment %d: %s; checking the chain head", sequence, exc)
                if await self._already_anchored(chain, sealed):
                    return
                await asyncio.sleep(backoff.next())
                continue
            except GatewayRefused as exc:
                if exc.code == "SEQUENCE_REPLAY":
                    if await self._already_anchored(chain, sealed):
                        return
                    raise ExtractorError(
                        f"segment {sequence} of camera {segment.camera_id} was refused as a "
                        "replay, but the ledger's chain head is not this spool's: another "
                        "extractor anchors this camera"
                    ) from exc
                if exc.code in FATAL_CODES:
                    raise ExtractorError(
                        f"segment {sequence} refused by the network: {exc.code}: {exc.message}"
                    ) from exc
                delay = backoff.next()
                log.warning(
                    "segment %d not anchored yet (%s: %s); retrying in %.1f s",
                    sequence,
                    exc.code,
                    exc.message,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            except NodeClientError as exc:
                delay = backoff.next()
                log.warning(
                    "segment %d not anchored yet (%s); %d segment(s) spooled; retrying in %.1f s",
                    sequence,
                    exc,
                    self._spooled(lambda: len(self.spool)),
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            else:
                self._anchored(segment.sequence, segment.capture_end_ms, result.block)
                log.info(
                    "segment %d anchored in block %d (tx %s…, endorsed by %s)",
                    sequence,
                    result.block,
                    result.tx_id[:16],
                    ", ".join(result.endorsers),
                )
                return

    def _anchored(self, sequence: int, capture_end_ms: int, block: int | None) -> None:
        self._anchored_upto = max(self._anchored_upto, sequence)
        if block is not None:
            self._blocks[sequence] = block
            self.metrics.segments_anchored += 1
        else:
            self.metrics.segments_already_anchored += 1
        if sequence > self.metrics.last_anchored_sequence:
            self.metrics.last_anchored_sequence = sequence
            self.metrics.last_anchored_capture_end_ms = capture_end_ms

    async def _already_anchored(self, chain: ChainClient, sealed: SealedSegment) -> bool:
        """Whether the ledger's chain already holds ``sealed`` (committed, unbeknown to
        us); raises when the ledger holds another segment in its place."""
        sequence = sealed.sequence
        try:
            head = await chain.anchor_head(sealed.segment.camera_id)
        except NodeClientError as exc:
            log.warning("cannot read the chain head (%s); will retry segment %d", exc, sequence)
            return False
        on_ledger = -1 if head is None else head.sequence
        if on_ledger < sequence:
            return False
        pending = self._spooled(self.spool.pending)
        if on_ledger not in pending:
            raise ExtractorError(
                f"camera {sealed.segment.camera_id}'s chain on the ledger reached segment "
                f"{on_ledger}, beyond this spool: another extractor anchors this camera"
            )
        ours = (await asyncio.to_thread(self._get, on_ledger)).segment_hash
        assert head is not None
        if ours != head.segment_hash:
            raise ExtractorError(
                f"segment {on_ledger} on the ledger is not this spool's: another extractor "
                "anchors this camera"
            )
        for done in [s for s in pending if self._anchored_upto < s <= on_ledger]:
            entry = await asyncio.to_thread(self._get, done)
            self._anchored(done, entry.segment.capture_end_ms, None)
        log.info(
            "segment %d was already anchored (committed before this extractor learnt it); "
            "the ledger's chain head is segment %d",
            sequence,
            on_ledger,
        )
        return True

    # -- uploading frame records -----------------------------------------------------------

    async def _upload_loop(self, records: RecordsClient) -> None:
        while True:
            pending = self._spooled(self.spool.pending)
            if not pending or pending[0] > self._anchored_upto:
                self._wake_upload.clear()
                await self._wake_upload.wait()
                continue
            sequence = pending[0]
            sealed = await asyncio.to_thread(self._get, sequence)
            await self._upload(records, sealed)
            await asyncio.to_thread(self._ack, sequence)
            self.metrics.segments_uploaded += 1
            self._refresh_metrics()

    async def _upload(self, records: RecordsClient, sealed: SealedSegment) -> None:
        """Until peers of ``record_copies`` organisations hold the segment's records."""
        sequence = sealed.sequence
        peers = self.network.record_peers if self.network is not None else ()
        if not peers:
            return
        body = await asyncio.to_thread(upload_body, sealed)
        block = self._blocks.get(sequence)
        min_height = 0 if block is None else block + 1
        confirmed: dict[str, str] = {}  # url -> msp id
        names: dict[str, str] = {}  # url -> the peer's name
        backoff = Backoff(self.settings.retry_min_s, self.settings.retry_max_s)
        copies = self.settings.record_copies
        while True:
            failures: list[str] = []
            for peer in peers:
                orgs = set(confirmed.values())
                if len(orgs) >= copies:
                    break
                known = self._record_orgs.get(peer.url)
                if peer.url in confirmed or (known is not None and known in orgs):
                    continue
                try:
                    receipt = await records.upload(
                        peer.url, sealed, min_height=min_height, body=body
                    )
                except NodeRefused as exc:
                    failures.append(f"{peer.url}: {exc.code}")
                    if exc.code not in ("not_anchored", "not_ready") and exc.status < 500:
                        log.error("segment %d records refused by %s", sequence, exc)
                    continue
                except NodeClientError as exc:
                    failures.append(str(exc))
                    continue
                confirmed[peer.url] = receipt.msp_id
                names[peer.url] = receipt.peer
                self._record_orgs[peer.url] = receipt.msp_id
            orgs = set(confirmed.values())
            if len(orgs) >= copies or len(confirmed) == len(peers):
                stored = ", ".join(f"{names[url]} ({msp})" for url, msp in confirmed.items())
                if len(orgs) < copies:
                    log.warning(
                        "segment %d records are held by %d organisation(s) only: every "
                        "record peer has them (%s)",
                        sequence,
                        len(orgs),
                        stored,
                    )
                else:
                    log.info("segment %d records stored at %s", sequence, stored)
                return
            delay = backoff.next()
            log.warning(
                "segment %d records held by %d of %d organisation(s) (%s); retrying in %.1f s",
                sequence,
                len(orgs),
                copies,
                "; ".join(failures) or "no other peer",
                delay,
            )
            await asyncio.sleep(delay)

    # -- gap reports -----------------------------------------------------------------------

    async def _gap_loop(self, chain: ChainClient) -> None:
        backoff = Backoff(self.settings.retry_min_s, self.settings.retry_max_s)
        camera = self.settings.camera_id
        while True:
            queued = await asyncio.to_thread(self.gaps.pending)
            if not queued:
                self._wake_gaps.clear()
                await self._wake_gaps.wait()
                continue
            gap = queued[0]
            try:
                result = await chain.submit("ReportGap", gap.args(camera))
            except GatewayRefused as exc:
                if exc.code in ("GAP_REPLAY", "GAP_CONFLICT"):
                    log.info("gap from %s was reported already", iso_ms(gap.from_ms))
                elif exc.code in FATAL_CODES or (
                    exc.status < 500 and exc.code != "CAPTURE_IN_FUTURE"
                ):
                    log.error("gap from %s refused: %s; not retried", iso_ms(gap.from_ms), exc)
                else:
                    await asyncio.sleep(backoff.next())
                    continue
            except (NodeClientError, TransactionInvalid) as exc:
                log.debug("gap report not sent yet: %s", exc)
                await asyncio.sleep(backoff.next())
                continue
            else:
                self.metrics.gaps_reported += 1
                log.info(
                    "gap from %s to %s recorded in block %d (tx %s…)",
                    iso_ms(gap.from_ms),
                    iso_ms(gap.to_ms),
                    result.block,
                    result.tx_id[:16],
                )
            backoff.reset()
            await asyncio.to_thread(self.gaps.ack, gap)

    # -- metrics ---------------------------------------------------------------------------

    def _refresh_metrics(self) -> None:
        metrics = self.metrics
        metrics.spool_pending = self._spooled(lambda: len(self.spool))
        end = metrics.last_anchored_capture_end_ms
        metrics.lag_ms = None if end is None else time.time_ns() // 1_000_000 - end

    def _write_metrics(self) -> None:
        path = self.settings.spool_dir / METRICS_FILE
        data = {**asdict(self.metrics), "fatal": self._fatal, "written": time.time()}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    async def _metrics_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metrics_interval_s)
            self._refresh_metrics()
            self._write_metrics()
            log.info("%s", self.metrics.line())
