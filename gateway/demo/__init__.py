"""The sample upstreams ``certgate demo`` publishes: an intranet page and a WebSocket echo.

For the demo and its test only; never part of a real deployment.
"""
