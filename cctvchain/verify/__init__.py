"""The verifier: align a clip to a camera's anchored frames, prove the anchors, report.

* :mod:`cctvchain.verify.align` — the pure alignment and classification core;
* :mod:`cctvchain.verify.bundle` — the offline evidence bundle and its checker;
* :mod:`cctvchain.verify.report` — the JSON report, terminal summary and exit codes;
* :mod:`cctvchain.verify.html` — the self-contained HTML evidence report;
* :mod:`cctvchain.verify.clip` — the media shell: decode a clip once into fingerprints.
"""
