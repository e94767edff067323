"""Network configuration (TOML) and the local crypto material and genesis it implies."""
