"""``cctvchain ingest``: run the frame-extractor plugin for one camera.

    cctvchain ingest --camera 5859 --source rtsp://10.20.0.7/stream \\
        --wallet nodes/wallets/cam-5859@CityCCTV [--peer URL ...] [--config FILE] \\
        [--policy normal|high:N|all] [--segment-seconds 10] [--spool DIR] [--duration S]

Runs as the camera's enrolled identity (a wallet of identity type ``camera``, bound to
the camera by its approval). Anchors go through ``--peer`` gateways (tried in turn) or,
by default, the peers of the network configuration, the wallet's organisation first;
frame records go to peers of two organisations (``--records-peer`` to choose them).
Segments wait in the durable spool (``--spool``, default ``nodes/spool/CAMERA``) until
committed, so the command may be stopped (Ctrl-C, SIGTERM) or killed at any time and
started again. See :mod:`cctvchain.ingest.extractor`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cctvchain.cli.errors import CliError
from cctvchain.cli.session import DEFAULT_CONFIG, WALLET_ENV

if TYPE_CHECKING:
    from cctvchain.chaincode.cctv.model import SamplingPolicy
    from cctvchain.ingest.extractor import NetworkSettings, RecordPeer

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_SEGMENT_SECONDS = 300  # the contract's limit on a segment's span


def add_parser(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "ingest",
        help="run the frame-extractor plugin for one camera",
        description="Fingerprint every frame of a camera's RTSP stream (or a video file), "
        "anchor S-second segments as the camera's identity and store their frame records "
        "at the peers; segments wait in a durable spool until committed. Stops after "
        "--duration, at the end of a file, or on Ctrl-C/SIGTERM (sealing the open "
        "segment and draining the spool first).",
    )
    parser.add_argument("--camera", required=True, help="the camera's id, e.g. 5859")
    parser.add_argument("--source", required=True, help="rtsp:// URL, or a video file")
    parser.add_argument(
        "--wallet",
        type=Path,
        default=os.environ.get(WALLET_ENV),
        help=f"the camera's enrolled identity (a wallet directory; default ${WALLET_ENV})",
    )
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="URL",
        help="a gateway peer, e.g. https://127.0.0.1:7051 (repeat for fail-over; default: "
        "the configuration's peers, your organisation's first)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="network configuration: its peers and TLS roots (default configs/local.toml)",
    )
    parser.add_argument(
        "--records-peer",
        action="append",
        default=[],
        metavar="URL",
        help="a peer to store frame records at (repeat; default: the configuration's peers)",
    )
    parser.add_argument(
        "--copies",
        type=int,
        default=2,
        help="organisations whose peers must hold each segment's records (default 2)",
    )
    parser.add_argument(
        "--policy",
        default="normal",
        help="sampling policy, as the camera was approved with: normal (1 frame/s), "
        "high:N (N frames/s) or all (default normal)",
    )
    parser.add_argument(
        "--segment-seconds", type=float, default=10.0, help="segment length (default 10)"
    )
    parser.add_argument("--spool", type=Path, help="spool directory (default nodes/spool/CAMERA)")
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop capturing after this long"
    )
    parser.add_argument(
        "--open-timeout", type=float, default=10.0, help="seconds to connect (default 10)"
    )
    parser.add_argument(
        "--read-timeout", type=float, default=10.0, help="seconds without data (default 10)"
    )
    parser.add_argument(
        "--capture-origin",
        type=int,
        metavar="MS",
        help="files: the camera time (ms since the epoch) of pts 0 (default: the file "
        "ended recording now)",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="files: pace frames by their timestamps, like a live camera",
    )
    parser.add_argument(
        "--metrics-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often to log the metrics line (default 10)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="on stop, how long to wait for the spool to drain (default 60)",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.set_defaults(func=_ingest)


def parse_policy(text: str) -> SamplingPolicy:
    from cctvchain.chaincode.cctv.model import SamplingPolicy

    match = re.fullmatch(r"(normal|all|high)(?::(\d{1,3}))?", text.strip().lower())
    if match is None:
        raise CliError(f"--policy {text!r}: use normal, high:N or all", exit_code=2)
    mode, rate = match.group(1), match.group(2)
    try:
        if mode == "high":
            return SamplingPolicy("high", int(rate) if rate else 5)
        if rate is not None:
            raise ValueError(f"the {mode} policy takes no rate")
        return SamplingPolicy(mode, 1 if mode == "normal" else 0)
    except ValueError as exc:
        raise CliError(f"--policy {text!r}: {exc}", exit_code=2) from None


def _network(args: argparse.Namespace) -> NetworkSettings:
    from cctvchain.client.transaction import ClientIdentity
    from cctvchain.ingest.extractor import NetworkSettings, RecordPeer
    from cctvchain.msp.errors import StoreError
    from cctvchain.msp.wallet import Wallet
    from cctvchain.network.config import NetworkConfigError, load_network_config
    from cctvchain.network.genesis import GenesisError
    from cctvchain.network.material import NetworkMaterial
    from cctvchain.node import tls
    from cctvchain.node.runtime import format_url

    if args.wallet is None:
        raise CliError(
            f"say which camera identity to act as: --wallet DIR (or set {WALLET_ENV})",
            exit_code=2,
        )
    wallet = Wallet(args.wallet)
    try:
        loaded = wallet.load()
        files = wallet.load_tls()
        trusted = [files.ca_file.read_bytes()]
    except (StoreError, OSError) as exc:
        raise CliError(f"cannot use wallet {args.wallet}: {exc}") from None
    if loaded.id_type != "camera":
        raise CliError(
            f"wallet {args.wallet} holds {loaded.name}, a {loaded.id_type} identity; ingest "
            "runs as the camera's own identity (enrolled with type camera)"
        )
    gateways: list[str] = list(args.peer)
    records: list[RecordPeer] = [RecordPeer(url) for url in args.records_peer]
    try:
        config = load_network_config(args.config)
    except NetworkConfigError as exc:
        if not gateways:
            raise CliError(f"{exc} (or name the gateway with --peer URL)") from None
        config = None
    if config is not None:
        msp_of = {org.name: org.msp_id for org in config.organizations}
        own = [p for p in config.peers if msp_of.get(p.org) == loaded.msp_id]
        others = [p for p in config.peers if msp_of.get(p.org) != loaded.msp_id]
        ordered = [*own, *others]
        if not gateways:
            gateways = [format_url(p.host, p.port) for p in ordered]
        if not records:
            records = [RecordPeer(format_url(p.host, p.port), msp_of.get(p.org)) for p in ordered]
        # Without the genesis block only the wallet's own TLS root is trusted.
        with contextlib.suppress(GenesisError, OSError, ValueError):
            trusted.append(tls.trust_bundle(NetworkMaterial.locate(config).channel_config()))
    if not records:
        records = [RecordPeer(url) for url in gateways]
    if not gateways:
        raise CliError(f"{args.config} lists no peer; name one with --peer URL")
    try:
        context = tls.client_context(files, tls.bundle(trusted))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot set up TLS with wallet {args.wallet}: {exc}") from None
    identity = ClientIdentity(loaded.msp_id, loaded.cert_pem, loaded.signing_key, loaded.name)
    return NetworkSettings(identity, context, tuple(gateways), tuple(records))


def _ingest(args: argparse.Namespace) -> int:
    from cctvchain.chaincode.cctv.access import is_valid_camera_id
    from cctvchain.ingest.extractor import Extractor, ExtractorError, ExtractorSettings
    from cctvchain.ingest.spool import SpoolError
    from cctvchain.media import is_stream_url

    if not is_valid_camera_id(args.camera):
        raise CliError(f"{args.camera!r} is not a valid camera id", exit_code=2)
    if not is_stream_url(args.source) and not Path(args.source).is_file():
        raise CliError(f"--source {args.source}: no such file (or give an rtsp:// URL)")
    if not 0 < args.segment_seconds <= MAX_SEGMENT_SECONDS:
        raise CliError(f"--segment-seconds must be in (0, {MAX_SEGMENT_SECONDS}]", exit_code=2)
    if args.duration is not None and args.duration <= 0:
        raise CliError("--duration must be positive", exit_code=2)
    if args.copies < 1:
        raise CliError("--copies must be at least 1", exit_code=2)
    for name in ("open_timeout", "read_timeout", "metrics_interval", "drain_timeout"):
        if getattr(args, name) <= 0:
            raise CliError(f"--{name.replace('_', '-')} must be positive", exit_code=2)
    policy = parse_policy(args.policy)
    network = _network(args)
    spool = args.spool or Path("nodes") / "spool" / args.camera
    settings = ExtractorSettings(
        camera_id=args.camera,
        source=args.source,
        spool_dir=spool,
        policy=policy,
        segment_ms=round(args.segment_seconds * 1000),
        duration_s=args.duration,
        open_timeout_s=args.open_timeout,
        read_timeout_s=args.read_timeout,
        metrics_interval_s=args.metrics_interval,
        drain_timeout_s=args.drain_timeout,
        record_copies=args.copies,
        capture_origin_ms=args.capture_origin,
        realtime=args.realtime,
    )
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s ingest[" + args.camera + "] %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("cctvchain.ingest").setLevel(args.log_level.upper())
    try:
        extractor = Extractor(settings, network)
    except (ExtractorError, SpoolError, OSError) as exc:
        raise CliError(f"cannot start ingest: {exc}") from None
    print(
        f"ingest camera {args.camera} from {args.source}: policy {policy.mode}"
        f"{f':{policy.rate}' if policy.mode == 'high' else ''}, segments of "
        f"{args.segment_seconds:g} s, spool {spool}, gateway {network.gateways[0]}",
        flush=True,
    )

    async def run() -> int:
        loop = asyncio.get_running_loop()
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if signals > 1:
                os._exit(130)  # the spool is durable: nothing sealed is lost
            extractor.stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal)
        result = await extractor.run()
        metrics = result.metrics
        if result.error is not None:
            raise CliError(
                f"{result.error} ({result.spool_pending} segment(s) kept in the spool {spool})"
            )
        left = (
            "spool empty"
            if result.spool_pending == 0 and result.gaps_pending == 0
            else f"{result.spool_pending} segment(s) and {result.gaps_pending} gap report(s) "
            f"left in the spool {spool}, sent on the next start"
        )
        print(
            f"ingest camera {args.camera}: {metrics.frames_fingerprinted} frames "
            f"fingerprinted ({metrics.frames_sampled} sampled), {metrics.segments_anchored} "
            f"segment(s) anchored (+{metrics.segments_already_anchored} already), records of "
            f"{metrics.segments_uploaded} stored, {metrics.gaps_seen} gap(s); {left}"
        )
        return 0

    try:
        return asyncio.run(run())
    except (ExtractorError, SpoolError) as exc:
        raise CliError(str(exc)) from None
