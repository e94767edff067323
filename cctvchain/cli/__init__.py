"""Command-line interface of cctvchain."""
