"""An in-process network of real components, for tests and the demo."""
