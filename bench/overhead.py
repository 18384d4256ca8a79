"""Per-call overhead of shoal's API path over a bare httpx call, and 500 requests in flight.

Both clients call the same fake Chat Completions server on 127.0.0.1, which runs in its own
process. Calls alternate between the bare httpx client and shoal (OpenAICompatProvider
behind GuardedProvider: body building, retries and limits, response parsing, logprob
mapping and pricing with genai-prices), so drift on the machine hits both alike. Then
`--in-flight` shoal requests are started at once on one event loop against a server that
holds each one for `--hold-ms`, and every result is checked.

    python bench/overhead.py --calls 1000 --in-flight 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import time
from typing import Any

import httpx

from shoal.calls import CallLimits, GuardedProvider
from shoal.providers.base import Message, Request
from shoal.providers.openai_compat import OpenAICompatProvider

API_KEY = "sk-bench-local-0123456789"
COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1_760_000_000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "B"},
            "logprobs": {
                "content": [
                    {
                        "token": "B",
                        "logprob": -0.2,
                        "top_logprobs": [
                            {"token": "B", "logprob": -0.2},
                            {"token": "A", "logprob": -1.9},
                            {"token": "C", "logprob": -3.1},
                        ],
                    }
                ]
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 183, "completion_tokens": 1, "total_tokens": 184},
}


# The fake server: a minimal HTTP/1.1 keep-alive server on asyncio streams, fast enough that
# the client side dominates the measured time.


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold_s: list[float],
                  stats: dict[str, int]) -> None:
    payload = json.dumps(COMPLETION).encode()
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            stats["in_flight"] += 1
            stats["max_in_flight"] = max(stats["max_in_flight"], stats["in_flight"])
            if hold_s[0] > 0:
                await asyncio.sleep(hold_s[0])
            stats["in_flight"] -= 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


def _serve(port_queue: Any, control: Any) -> None:
    async def main() -> None:
        hold_s = [0.0]
        stats = {"in_flight": 0, "max_in_flight": 0}
        server = await asyncio.start_server(
            lambda r, w: _handle(r, w, hold_s, stats), "127.0.0.1", 0, backlog=2048
        )
        port_queue.put(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, control.get)
            if command == "stop":
                break
            if command == "stats":
                port_queue.put(dict(stats))
            else:
                hold_s[0] = float(command)
                stats["max_in_flight"] = 0
        server.close()

    asyncio.run(main())


REQUEST = Request(
    messages=(
        Message("system", "Answer with the letter of the category that fits the text."),
        Message("user", "A. card arrival\nB. card linking\nC. card acceptance\n\n"
                        'Text: "How do I link my new card?"'),
    ),
    candidates=("A", "B", "C"),
    max_tokens=1,
)


async def _bare_call(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> str:
    response = await client.post(url, json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    response.raise_for_status()
    return str(response.json()["choices"][0]["message"]["content"])


async def measure_overhead(base_url: str, calls: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        provider = GuardedProvider(
            OpenAICompatProvider("gpt-4o-mini", base_url=base_url, api_key=API_KEY, client=client)
        )
        url = f"{base_url}/chat/completions"
        body = {
            "model": "gpt-4o-mini",
            "messages": [{"role": m.role, "content": m.content} for m in REQUEST.messages],
            "max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": 20,
        }
        for _ in range(50):  # warm up connections, caches and genai-prices' lookups
            await _bare_call(client, url, body)
            await provider.complete(REQUEST)
        bare, shoal = [], []
        for _ in range(calls):
            started = time.perf_counter()
            await _bare_call(client, url, body)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = await provider.complete(REQUEST)
            shoal.append(time.perf_counter() - started)
            assert response.label_probs is not None and response.cost is not None
    bare_median, shoal_median = statistics.median(bare), statistics.median(shoal)
    return {
        "calls_each": calls,
        "bare_median_ms": bare_median * 1000,
        "shoal_median_ms": shoal_median * 1000,
        "overhead_median_pct": (shoal_median - bare_median) / bare_median * 100,
        "bare_p95_ms": statistics.quantiles(bare, n=20)[-1] * 1000,
        "shoal_p95_ms": statistics.quantiles(shoal, n=20)[-1] * 1000,
    }


async def measure_in_flight(base_url: str, in_flight: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        provider = GuardedProvider(
            OpenAICompatProvider("gpt-4o-mini", base_url=base_url, api_key=API_KEY, client=client),
            limits=CallLimits(max_concurrency=in_flight),
        )
        started = time.perf_counter()
        results = await asyncio.gather(
            *(provider.complete(REQUEST) for _ in range(in_flight)), return_exceptions=True
        )
        wall_s = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    answered = [r for r in results if not isinstance(r, BaseException) and r.text == "B"]
    return {
        "requests": in_flight,
        "answered": len(answered),
        "errors": len(errors),
        "first_error": repr(errors[0]) if errors else None,
        "wall_s": wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls of each client")
    parser.add_argument("--in-flight", type=int, default=500, help="concurrent shoal requests")
    parser.add_argument("--hold-ms", type=float, default=200.0,
                        help="time the server holds each concurrent request, in ms")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    port_queue, control = context.Queue(), context.Queue()
    server = context.Process(target=_serve, args=(port_queue, control), daemon=True)
    server.start()
    base_url = f"http://127.0.0.1:{port_queue.get(timeout=30)}/v1"
    try:
        overhead = asyncio.run(measure_overhead(base_url, args.calls))
        control.put(str(args.hold_ms / 1000))
        concurrent = asyncio.run(measure_in_flight(base_url, args.in_flight))
        control.put("stats")
        concurrent["server_max_in_flight"] = port_queue.get(timeout=30)["max_in_flight"]
    finally:
        control.put("stop")
        server.join(timeout=10)
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} "
                   f"CPUs, Python {platform.python_version()}, httpx {httpx.__version__}",
        "overhead": overhead,
        "in_flight": concurrent,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
