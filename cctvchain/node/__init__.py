"""Node processes: the shell that serves the pure cores over HTTPS with asyncio + aiohttp.

* :mod:`~cctvchain.node.runtime` -- :class:`NodeContext` (network, node, material, log),
  :class:`NodeService` (what a service factory returns), :func:`run_node` (foreground,
  signals, clean stop) and :class:`NodeServer` (the same, embeddable);
* :mod:`~cctvchain.node.services` -- ``SERVICES``: the service factory of each kind;
* :mod:`~cctvchain.node.http` -- :func:`make_app` (JSON errors, request logging, health
  and readiness, body limit), :func:`read_json` and the ``field_*`` helpers;
* :mod:`~cctvchain.node.errors` -- :class:`HttpError` and its statuses;
* :mod:`~cctvchain.node.tls` -- server and client TLS contexts from a wallet and the
  channel configuration's TLS roots;
* :mod:`~cctvchain.node.auth` -- the mutual-TLS middleware that identifies each caller
  through the (replaceable) MSP view;
* :mod:`~cctvchain.node.client` -- calling a node with clear errors;
* :mod:`~cctvchain.node.ca_service` and :mod:`~cctvchain.node.ca_client` -- the CA node.
"""
