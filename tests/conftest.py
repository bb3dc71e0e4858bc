"""Put the repository root on sys.path so tests can import ``tests.conformance`` and the engine."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
