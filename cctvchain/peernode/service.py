"""The peer node's HTTPS service (``SERVICES["peer"]``): every route, over mutual TLS.

See :mod:`cctvchain.peernode.core` (ledger, deliver, commit), :mod:`.gateway` (endorse,
submit, evaluate), :mod:`.api` (reads, events, metrics) and :mod:`.records` (the
off-chain frame records and reported gaps). The OpenAPI document
``cctvchain/api/openapi.yaml`` describes every route and is served at
``GET /api/v1/openapi.yaml``.
"""

from __future__ import annotations

from aiohttp import web

from cctvchain.ingest.records import MAX_RECORDS_BYTES
from cctvchain.node.auth import mtls_auth
from cctvchain.node.http import make_app, readiness
from cctvchain.node.runtime import NodeContext, NodeService
from cctvchain.peernode.api import ReadApi
from cctvchain.peernode.core import PeerCore
from cctvchain.peernode.gateway import MAX_PROPOSAL_BYTES, Gateway
from cctvchain.peernode.records import mount_records
from cctvchain.peernode.verify_api import mount_verify

API = "/api/v1"
BODY_SLACK = 64 * 1024


def build_app(core: PeerCore) -> web.Application:
    context = core.context
    max_body = (
        max(core.channel.config.batch.absolute_max_bytes, MAX_PROPOSAL_BYTES, MAX_RECORDS_BYTES)
        + BODY_SLACK
    )
    app = make_app(
        context.name,
        "peer",
        log=context.log,
        middlewares=[mtls_auth(core.msp_view, now=context.now)],
        max_body=max_body,
    )
    gateway = Gateway(core)
    api = ReadApi(core)
    router = app.router
    router.add_post(f"{API}/endorse", gateway.handle_endorse_p2p)
    router.add_post(f"{API}/gateway/evaluate", gateway.handle_evaluate)
    router.add_post(f"{API}/gateway/endorse", gateway.handle_endorse)
    router.add_post(f"{API}/gateway/submit", gateway.handle_submit)
    router.add_get(f"{API}/channel", api.channel)
    router.add_get(f"{API}/blocks/{{number:\\d+}}", api.block)
    router.add_get(f"{API}/transactions/{{tx_id}}", api.transaction)
    router.add_get(f"{API}/cameras", api.cameras)
    router.add_get(f"{API}/cameras/{{camera_id}}", api.camera)
    router.add_get(f"{API}/cameras/{{camera_id}}/access", api.camera_access)
    router.add_get(f"{API}/cameras/{{camera_id}}/grants", api.camera_grants)
    router.add_get(f"{API}/cameras/{{camera_id}}/anchors", api.anchors)
    router.add_get(f"{API}/cameras/{{camera_id}}/anchors/head", api.anchor_head)
    router.add_get(f"{API}/cameras/{{camera_id}}/anchors/{{sequence:\\d+}}", api.anchor)
    router.add_get(f"{API}/history", api.history)
    router.add_get(f"{API}/history/{{tx_id}}", api.history_record)
    router.add_get(f"{API}/participants/{{participant_id}}", api.participant)
    router.add_get(f"{API}/whoami", api.whoami)
    router.add_get(f"{API}/events", api.events)
    router.add_get(f"{API}/openapi.yaml", api.openapi)
    router.add_get("/metrics", api.metrics)
    records = mount_records(app, core, API)
    mount_verify(app, core, records.store, API)
    app.on_startup.append(core.start)
    app.on_shutdown.append(core.shutdown)
    app.on_cleanup.append(core.cleanup)
    readiness(app).add_check(core.readiness)
    return app


async def create_peer_service(context: NodeContext) -> NodeService:
    core = PeerCore(context)
    try:
        app = build_app(core)
    except BaseException:
        core.ledger.close()
        raise
    return NodeService(
        app=app,
        ssl_context=core.server_ssl,
        description=(
            f"peer {context.name} of {context.org.name} on channel {core.channel.channel_id}: "
            f"ledger height {core.ledger.height}, endorsing {', '.join(sorted(core.contracts))}"
        ),
    )
