"""Local emulator of the Monoz Link downlink API (HTTP + embedded MQTT broker + simulated devices).

A developer tool for the monoz.link collection's tests, benchmarks and demo;
not part of the built collection.
"""

from __future__ import annotations

__version__ = "0.1.0"
