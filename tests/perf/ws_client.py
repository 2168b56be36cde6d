"""WebSocket echo round trips through a proxy, run as its own process by bench.py.

Usage: ws_client.py URL HOST CLIENT_PEM CA_PEM CONNECTIONS SECONDS
Prints one JSON object: round trips per second, p50 and p99 in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import statistics
import sys
import time

import aiohttp
import uvloop


async def one_connection(session: aiohttp.ClientSession, url: str, host: str,
                         deadline: float, samples: list[float]) -> None:
    payload = "x" * 256
    async with session.ws_connect(url, headers={"Host": host}, autoping=False) as ws:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await ws.send_str(payload)
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT or msg.data != payload:
                raise RuntimeError(f"bad echo: {msg.type}")
            samples.append(time.perf_counter() - start)


async def main(url: str, host: str, client_pem: str, ca_pem: str, conns: int,
               seconds: float) -> dict[str, float]:
    ctx = ssl.create_default_context(cafile=ca_pem)
    ctx.check_hostname = False
    ctx.load_cert_chain(client_pem)
    samples: list[float] = []
    connector = aiohttp.TCPConnector(ssl=ctx, limit=conns)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(one_connection(session, url, host, deadline, samples)
                               for _ in range(conns)))
        elapsed = time.perf_counter() - started
    samples.sort()
    return {
        "rps": len(samples) / elapsed,
        "p50_ms": statistics.median(samples) * 1000,
        "p99_ms": samples[int(len(samples) * 0.99) - 1] * 1000,
        "count": len(samples),
    }


if __name__ == "__main__":
    url, host, client_pem, ca_pem = sys.argv[1:5]
    result = uvloop.run(main(url, host, client_pem, ca_pem, int(sys.argv[5]), float(sys.argv[6])))
    print(json.dumps(result))
