"""Peers that serve chosen evidence over real mutual TLS (test support, not a test module).

A :class:`ServedPeer` listens on a peer's port of a :mod:`peer_cluster` network
configuration with that peer's own TLS certificate (so the ``cctvchain verify`` client
cannot tell it from the real node) and answers the three verify routes —
``POST .../locate``, ``GET .../evidence``, ``GET /api/v1/blocks/{n}/header`` — from an
:class:`~cctvchain.verify.bundle.EvidenceBundle` the test gives it: an honest one, a
doctored one (an anchor left out), or a refusal. Each runs its own event loop on a
thread and records the requests it answered.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cctvchain.verify.bundle import EvidenceBundle


@dataclass
class Behaviour:
    bundle: EvidenceBundle | None = None
    located: tuple[int, int] | None = None  # captureStart, captureEnd (None: no match)
    refuse: tuple[int, str, str] | None = None  # status, code, message for every call
    refuse_evidence: tuple[int, str, str] | None = None  # the same, for evidence only
    chain: EvidenceBundle | None = None  # whose headers it serves (default: bundle's)
    max_span_ms: int | None = None  # stated in the locate answer (maxEvidenceSpanMs)
    later: tuple[EvidenceBundle, ...] = ()  # served for the 2nd, 3rd... evidence request


@dataclass
class ServedPeer:
    port: int
    ssl_context: ssl.SSLContext
    behaviour: Behaviour
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    def start(self) -> ServedPeer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/cameras/{camera}/locate", self._locate)
        app.router.add_get("/api/v1/cameras/{camera}/evidence", self._evidence)
        app.router.add_get("/api/v1/blocks/{number}/header", self._header)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
        await site.start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def _refusal(self, evidence: bool = False) -> web.Response | None:
        refuse = self.behaviour.refuse
        if evidence and refuse is None:
            refuse = self.behaviour.refuse_evidence
        if refuse is None:
            return None
        status, code, message = refuse
        return web.json_response({"code": code, "message": message}, status=status)

    async def _locate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("locate", request.match_info["camera"], body))
        refused = self._refusal()
        if refused is not None:
            return refused
        span = self.behaviour.located
        bundle = self.behaviour.bundle
        segments = []
        if span is not None and bundle is not None:
            segments = [
                {
                    "sequence": a.segment.sequence,
                    "captureStart": a.segment.capture_start_ms,
                    "captureEnd": a.segment.capture_end_ms,
                    "exact": len(a.records),
                    "perceptual": 0,
                }
                for a in bundle.anchors
            ]
        answer: dict[str, Any] = {
            "segments": segments,
            "captureStart": span[0] if span else None,
            "captureEnd": span[1] if span else None,
        }
        if self.behaviour.max_span_ms is not None:
            answer["maxEvidenceSpanMs"] = self.behaviour.max_span_ms
        return web.json_response(answer)

    async def _evidence(self, request: web.Request) -> web.Response:
        self.requests.append(("evidence", request.match_info["camera"], dict(request.query)))
        refused = self._refusal(evidence=True)
        if refused is not None:
            return refused
        if self.behaviour.bundle is None:
            return web.json_response(
                {"code": "no_anchors", "message": "no anchors in that time"}, status=404
            )
        served = sum(kind == "evidence" for kind, _, _ in self.requests) - 1
        bundle = self.behaviour.bundle
        if 0 < served <= len(self.behaviour.later):
            bundle = self.behaviour.later[served - 1]
        return web.Response(body=bundle.encode(), content_type="application/cbor")

    async def _header(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        self.requests.append(("header", str(number), None))
        bundle = self.behaviour.chain or self.behaviour.bundle
        headers = {h.number: h for h in bundle.headers} if bundle is not None else {}
        header = headers.get(number)
        if header is None:
            return web.json_response(
                {"code": "block_not_found", "message": f"no block {number}"}, status=404
            )
        return web.json_response(
            {
                "number": number,
                "hash": header.hash().hex(),
                "previousHash": header.previous_hash.hex(),
                "dataHash": header.data_hash.hex(),
            }
        )


def located_span(bundle: EvidenceBundle) -> tuple[int, int]:
    return (
        min(a.segment.capture_start_ms for a in bundle.anchors),
        max(a.segment.capture_end_ms for a in bundle.anchors),
    )
