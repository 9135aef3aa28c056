"""dlatrack engine: the PyTorch side of dlatrack (DAM, lighting model G, registration, server)."""

__version__ = "0.1.0"
