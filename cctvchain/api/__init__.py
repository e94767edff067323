"""Interface documents shipped with the package (``openapi.yaml``: the peer's HTTP API)."""
