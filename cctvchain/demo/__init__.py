"""``cctvchain demo``: a walkthrough of the foundation with real components, no mocks.

* :mod:`~cctvchain.demo.workspace`: the demo directory (fresh on every run);
* :mod:`~cctvchain.demo.participants`: the paper's participants and a camera;
* :mod:`~cctvchain.demo.config_update`: revocation carried to the channel by a signed
  configuration block;
* :mod:`~cctvchain.demo.walkthrough`: the six steps, narrated.
"""


class DemoError(Exception):
    """A step did not behave as the walkthrough expects, or cannot run here."""
