"""``cctvchain verify-bundle FILE [CLIP]``: re-check a verdict offline from an evidence bundle.

Without CLIP the bundle's own clip fingerprints (if it holds them) are aligned again;
with CLIP the clip is decoded and checked against the bundled anchors. Exit codes:
0 ``AUTHENTIC`` / ``AUTHENTIC_REENCODED`` (or the evidence holds and no clip was given),
3 ``TAMPERED``, 4 ``UNVERIFIABLE`` (including evidence that does not hold), 2 a usage
error, 1 any other failure (e.g. a clip that cannot be decoded).

:func:`finish` is the offline half of ``cctvchain verify`` too: once the network half
has fetched the evidence and assembled it into a bundle (anchors, records with proofs,
block headers with orderer signatures, the configurations), it calls :func:`finish`
to decode the clip, check the bundle and the clip against it, report and write the
``--bundle`` file — so that the network and the offline verdicts are the same code.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import TextIO

from cctvchain.cli.errors import CliError
from cctvchain.verify.bundle import (
    BundleError,
    EvidenceBundle,
    anchored_digests,
    check_bundle,
    read_bundle,
    with_clip,
)
from cctvchain.verify.fingerprints import ClipFingerprints
from cctvchain.verify.report import build_report, dumps, summary
from cctvchain.verify.result import (
    EXIT_FAILURE,
    EXIT_USAGE,
    VerifyResult,
    result_from_bundle,
    unverifiable,
)

PROGRESS_MIN_FRAMES = 250  # show a progress bar on clips longer than this


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "verify-bundle",
        help="re-check a verification offline from an evidence bundle",
        description=(
            "Check an evidence bundle with no network: genesis and configuration chain, "
            "block headers and orderer signatures, the anchor transactions and their "
            "signers, the frame records' Merkle proofs. With CLIP, verify the clip "
            "against the bundled anchors; without, re-derive the verdict from the clip "
            "fingerprints the bundle holds. Exit 0 authentic, 3 tampered, 4 unverifiable."
        ),
    )
    parser.add_argument("bundle", metavar="FILE", help="the evidence bundle")
    parser.add_argument("clip", metavar="CLIP", nargs="?", help="the clip to verify (optional)")
    add_output_options(parser)
    parser.add_argument(
        "--genesis-hash",
        metavar="HEX",
        help="the channel's genesis block hash, as the network publishes it (pins the trust root)",
    )
    parser.set_defaults(func=run_verify_bundle)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", help="write the JSON report to FILE")
    parser.add_argument(
        "--report", metavar="FILE.html", help="write the self-contained HTML report to FILE"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no terminal summary (exit code and files only)"
    )


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed, for the reports' 'how to reproduce'."""
    return shlex.join(["cctvchain", *(sys.argv[1:] if argv is None else argv)])


class Progress:
    """A one-line progress bar on stderr (only on a terminal, only on long clips)."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled or (total is not None and total < PROGRESS_MIN_FRAMES):
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        if total:
            fraction = min(done / total, 1.0)
            bar = "#" * int(fraction * 30)
            text = f"{self.label} [{bar:<30}] {fraction:4.0%} {done}/{total} frames {rate:5.0f} fps"
        else:
            text = f"{self.label} {done} frames {rate:5.0f} fps"
        self.stream.write("\r" + text)
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()


def decode_clip(path: Path, known: set[bytes] | None) -> ClipFingerprints:
    """Decode the clip once (lazy perceptual fingerprints when the digests are known)."""
    from cctvchain.media import MediaError  # PyAV only where a clip is decoded
    from cctvchain.verify.clip import fingerprint_clip

    if not path.is_file():
        raise CliError(f"clip {path} does not exist", EXIT_USAGE)
    progress = Progress(f"decoding {path.name}")
    try:
        return fingerprint_clip(path, known_digests=known, progress=progress)
    except MediaError as exc:
        raise CliError(f"cannot decode the clip: {exc}", EXIT_FAILURE) from exc
    finally:
        progress.close()


def write_outputs(
    result: VerifyResult,
    *,
    json_path: str | None,
    html_path: str | None,
    clip_path: Path | None,
    reproduce: str = "",
) -> None:
    """Write the JSON and HTML reports the options asked for."""
    if json_path:
        _write(json_path, dumps(build_report(result)))
    if html_path:
        from cctvchain.verify import html

        pictures = {}
        wanted = html.wanted_pictures(result)
        if clip_path is not None and wanted:
            from cctvchain.verify.clip import grab_pictures

            try:
                pictures = grab_pictures(clip_path, wanted)
            except Exception as exc:  # a picture is a nicety, the report is not
                print(f"cctvchain: note: no frame pictures: {exc}", file=sys.stderr)
        _write(html_path, html.render(result, pictures, reproduce=reproduce))


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}", EXIT_FAILURE) from exc


def emit(result: VerifyResult, quiet: bool, out: TextIO | None = None) -> None:
    """The terminal summary on stdout (unless ``quiet``)."""
    if quiet:
        return
    stream = out if out is not None else sys.stdout
    stream.write(summary(result, colour=stream.isatty()))


def finish(
    bundle: EvidenceBundle,
    *,
    clip_path: Path | None,
    clip: ClipFingerprints | None = None,
    expected_genesis: bytes | None = None,
    json_path: str | None = None,
    html_path: str | None = None,
    bundle_path: str | None = None,
    quiet: bool = False,
    source: str = "bundle",
    command: str = "",
) -> int:
    """Decode the clip (if any; ``clip``: already decoded), check ``bundle`` and the clip
    against it, report, write the bundle (with the clip's fingerprints) if asked; return
    the exit code."""
    if clip is None and clip_path is not None:
        clip = decode_clip(clip_path, anchored_digests(bundle))
    if clip is not None and source != "bundle":
        bundle = with_clip(bundle, clip)
    evidence = check_bundle(bundle, clip, expected_genesis=expected_genesis)
    result = result_from_bundle(evidence, source=source, command=command)
    if bundle_path:
        try:
            Path(bundle_path).write_bytes(bundle.encode())
        except OSError as exc:
            raise CliError(f"cannot write {bundle_path}: {exc}", EXIT_FAILURE) from exc
    reproduce = ""
    if bundle_path and clip_path is not None:
        reproduce = shlex.join(["cctvchain", "verify-bundle", bundle_path, str(clip_path)])
    emit(result, quiet)
    write_outputs(
        result, json_path=json_path, html_path=html_path, clip_path=clip_path, reproduce=reproduce
    )
    return result.exit_code


def run_verify_bundle(args: argparse.Namespace) -> int:
    command = command_line()
    path = Path(args.bundle)
    expected = None
    if args.genesis_hash:
        try:
            expected = bytes.fromhex(args.genesis_hash)
        except ValueError:
            raise CliError("--genesis-hash must be hexadecimal", EXIT_USAGE) from None
        if len(expected) != 32:
            raise CliError("--genesis-hash must be 32 bytes (64 hex digits)", EXIT_USAGE)
    clip_path = Path(args.clip) if args.clip else None
    if clip_path is not None and not clip_path.is_file():
        raise CliError(f"clip {clip_path} does not exist", EXIT_USAGE)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"bundle {path} does not exist", EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_FAILURE) from exc
    try:
        bundle = read_bundle(data)
    except BundleError as exc:
        result = unverifiable("", str(exc), source="bundle", command=command)
        emit(result, args.quiet)
        write_outputs(result, json_path=args.json, html_path=args.report, clip_path=None)
        return result.exit_code
    return finish(
        bundle,
        clip_path=clip_path,
        expected_genesis=expected,
        json_path=args.json,
        html_path=args.report,
        quiet=args.quiet,
        source="bundle",
        command=command,
    )
