"""Frame-extractor plugin: fingerprints, sampling, segments (pure cores) and the spool."""
