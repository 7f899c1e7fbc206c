"""Serving load test and prediction speed: a table run over HTTP, and predict with torch vs onnxruntime.

1. Trains a small MLP on the built-in ``digits`` table (64 pixel columns, 10 classes; 5 epochs)
   and exports it to ONNX (the export's own parity check runs).
2. Serves it with ``trainwright.serve.serve`` (what ``trainwright serve`` runs) in a separate process
   on 127.0.0.1 (loopback only; the ONNX export, and the run directory itself for PyTorch), one
   intra-op thread, default batching (2 ms window, up to 256 rows). For 1, 8 and 32 concurrent
   clients (asyncio + httpx, each request one JSON row), a fixed number of requests
   (``--requests``, default 400) or at most ``--seconds`` (default 30) per level, whichever ends
   first: throughput (requests/s), p50 and p99 latency, forward passes per request (the
   batching), and the server process's CPU time per request (from /proc: unlike latency, it does
   not depend on what else the machine runs).
3. ``predict`` rows/s on 20,000 rows, one thread each: the run's ``TrainedModel`` (PyTorch) vs
   the exported directory (onnxruntime), both end to end (a frame in, a frame of predictions
   out) and the model's forward pass alone.

    python benchmarks/serve_load.py [--requests 400] [--seconds 30] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

LEVELS = (1, 8, 32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path, port: int) -> subprocess.Popen:
    code = f"from trainwright.serve import serve; serve({str(path)!r}, port={port}, threads=1)"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start within 120 s")


async def load(url: str, rows: list[dict], clients: int, requests: int, seconds: float) -> dict:
    """``clients`` concurrent loops posting one row each until ``requests`` are done or time is up."""
    import httpx

    latencies: list[float] = []
    failures, first_failure, dropped = 0, "", []
    issued = 0
    stop = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal issued, failures, first_failure
        while issued < requests and time.perf_counter() < stop:
            row = rows[issued % len(rows)]
            issued += 1
            start = time.perf_counter()
            try:
                response = await http.post(f"{url}/predict", json=[row])
            except httpx.TransportError as error:  # e.g. a kept-alive connection the server closed meanwhile
                dropped.append(repr(error))
                continue
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                failures += 1
                first_failure = first_failure or f"{response.status_code} {response.text[:300]}"

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        await http.post(f"{url}/predict", json=[rows[0]])  # warm-up: connection and first forward pass
        began = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - began
    ms = np.array(latencies) * 1000
    if failures:
        raise RuntimeError(f"{failures} of {len(latencies)} requests failed; the first: {first_failure}")
    return {"clients": clients, "requests": len(latencies), "dropped": len(dropped), "seconds": wall,
            "throughput": len(latencies) / wall, "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError):
        return float("nan")


def serve_levels(path: Path, rows: list[dict], requests: int, seconds: float) -> list[dict]:
    import httpx

    port = free_port()
    server = start_server(path, port)
    url = f"http://127.0.0.1:{port}"
    results = []
    try:
        for clients in LEVELS:
            before, cpu = httpx.get(f"{url}/health").json(), cpu_seconds(server.pid)
            result = asyncio.run(load(url, rows, clients, requests, seconds))
            result["server_cpu_ms_per_request"] = (cpu_seconds(server.pid) - cpu) * 1000 / max(1, result["requests"])
            after = httpx.get(f"{url}/health").json()
            result["passes_per_request"] = (after["batches"] - before["batches"]) / max(1, after["requests"] - before["requests"])
            results.append(result)
    finally:
        server.terminate()
        server.wait(10)
    return results


def rows_per_second(function, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        n = function()
        best = min(best, time.perf_counter() - start)
    return n / best


def predict_speed(run: Path, export: Path, frame: pd.DataFrame) -> dict:
    import torch

    import trainwright as tw
    from trainwright.export import load_predictor

    torch.set_num_threads(1)
    trained, onnx = tw.load(run), load_predictor(export, threads=1)
    _, x = onnx.inputs(frame)
    xt = torch.from_numpy(x)

    def torch_forward() -> int:
        with torch.inference_mode():
            return len(trained.module(xt))

    return {
        "rows": len(frame),
        "predict_torch": rows_per_second(lambda: len(trained.predict(frame))),
        "predict_onnxruntime": rows_per_second(lambda: len(onnx.predict(frame))),
        "forward_torch": rows_per_second(torch_forward),
        "forward_onnxruntime": rows_per_second(lambda: len(onnx.outputs(x))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--seconds", type=float, default=30.0, help="time cap per concurrency level")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from rich.console import Console

    import trainwright as tw
    from trainwright.data.builtin import BUILTINS
    from trainwright.export import export_run

    with tempfile.TemporaryDirectory() as tmp:
        run = tw.train({"data": {"source": "digits"}, "train": {"epochs": 5}, "evaluate": {"baseline": False}},
                       runs_dir=tmp, name="digits-mlp", console=Console(quiet=True)).dir
        export = export_run(run, "onnx", Path(tmp) / "onnx")["path"]
        table = BUILTINS["digits"].load().drop(columns=["digit"])
        rows = json.loads(table.iloc[:500].to_json(orient="records"))
        results = {"serve": {}}
        for backend, path in (("onnxruntime", Path(export)), ("torch", run)):
            results["serve"][backend] = serve_levels(path, rows, args.requests, args.seconds)
        frame = pd.concat([table] * (20000 // len(table) + 1), ignore_index=True).iloc[:20000]
        results["predict"] = predict_speed(run, Path(export), frame)

    print(f"serving digits-mlp over loopback, one row per request, up to {args.requests} requests or {args.seconds:g} s "
          "per level")
    print(f"{'backend':<12} {'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'passes/req':>10} "
          f"{'CPU ms/req':>10}")
    for backend, levels in results["serve"].items():
        for r in levels:
            print(f"{backend:<12} {r['clients']:>7} {r['requests']:>8} {r['throughput']:>8.0f} {r['p50_ms']:>8.2f} "
                  f"{r['p99_ms']:>8.2f} {r['passes_per_request']:>10.2f} {r['server_cpu_ms_per_request']:>10.2f}"
                  + (f"  ({r['dropped']} connections dropped)" if r["dropped"] else ""))
    p = results["predict"]
    print(f"predict on {p['rows']} rows, 1 thread: end to end torch {p['predict_torch']:,.0f} rows/s, onnxruntime "
          f"{p['predict_onnxruntime']:,.0f} rows/s; forward pass alone torch {p['forward_torch']:,.0f} rows/s, onnxruntime "
          f"{p['forward_onnxruntime']:,.0f} rows/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
