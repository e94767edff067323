"""Process supervision for a whole network on one machine (``cctvchain network``).

Every node of the configuration (each organisation's CA, the orderers, the peers) runs as
its own detached OS process, ``python -m cctvchain node start --config FILE --name NODE``,
in a new session, logging to ``<nodes_dir>/<node>/node.log``. Its pid file
``<nodes_dir>/<node>/node.pid`` records the pid together with the process's start time
and the boot it started in, so a pid reused after a reboot (or by another program) is
never taken for the node.

Modules, smallest first:

* :mod:`~cctvchain.supervisor.nodes` -- the nodes of a configuration, where their files are;
* :mod:`~cctvchain.supervisor.pidfile` -- pid records and whether their process still lives;
* :mod:`~cctvchain.supervisor.process` -- spawning, signalling and waiting for nodes;
* :mod:`~cctvchain.supervisor.probe` -- ports, ``/healthz``, ``/readyz``, ``/status`` over TLS;
* :mod:`~cctvchain.supervisor.table` -- the status table;
* :mod:`~cctvchain.supervisor.network` -- ``up``, ``status`` and ``down`` put together.
"""

from __future__ import annotations

from typing import Final

DEFAULT_UP_TIMEOUT: Final = 60.0  # seconds for every node to be ready
DEFAULT_DOWN_TIMEOUT: Final = 15.0  # seconds for each kind of node to exit on SIGTERM
