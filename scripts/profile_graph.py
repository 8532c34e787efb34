#!/usr/bin/env python
"""Where a bundle's model time goes: ONNX Runtime's profiler over test postings, summed per operator type.

    python scripts/profile_graph.py artifacts/bundles/model_a_v1 --threads 1 --json artifacts/bench/profile.json
    python scripts/profile_graph.py artifacts/bundles/model_a_v1 --graph OTHER.onnx   # any graph, same inputs

Batch 1, the bundle's own preprocessing and tokenizer, the session the device creates (graph optimizations
on). Reported per operator type: microseconds per run and share of the summed kernel time; plus the run's
median wall time and the gap between it and the kernels (executor overhead, thread hand-offs). On a shared
box the absolute times move with the load; the shares are what to read.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--graph", type=Path, default=None, help="Profile this graph instead of the bundle's.")
    parser.add_argument("--splits", type=Path, default=Path("data/processed/splits"))
    parser.add_argument("--postings", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args(argv)

    import onnxruntime as ort

    from device.runtime import load_backend
    from shared.bundle import MODEL_FILE
    from shared.text import model_input

    backend = load_backend(args.bundle, threads=args.threads)
    csv.field_size_limit(sys.maxsize)
    with open(args.splits / "test.csv", newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row, _ in zip(csv.DictReader(handle), range(args.postings))]
    batches = [backend.encode([model_input(t, backend.preprocessing)]) for t in texts]
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "profile")
        graph = str(args.graph or args.bundle / MODEL_FILE)
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        for _ in range(args.repeats):
            for batch in batches:
                session.run(None, {name: getattr(batch, name) for name in names})
        with open(session.end_profiling(), encoding="utf-8") as handle:
            events = json.load(handle)
    runs = [e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    per_op, nodes = collections.defaultdict(float), collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"] / len(runs)
            nodes[event["args"]["op_name"]] += 1
    kernels = sum(per_op.values())
    result = {
        "graph": graph,
        "threads": args.threads,
        "runs": len(runs),
        "run_p50_us": round(float(np.median(runs)), 1),
        "kernels_us": round(kernels, 1),
        "nodes_run": sum(nodes.values()) // len(runs),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "operators": {
            op: {"us": round(us, 1), "share": round(us / kernels, 4), "nodes": nodes[op] // len(runs)}
            for op, us in sorted(per_op.items(), key=lambda item: -item[1])
        },
    }
    print(
        f"{graph}: {result['nodes_run']} nodes, run p50 {result['run_p50_us']:.0f} us, kernels {kernels:.0f} us "
        f"({args.threads} threads, load {result['load_average_1m']})"
    )
    for op, row in result["operators"].items():
        print(f"  {op:<28}{row['us']:>9.1f} us {row['share']:>7.1%}  ({row['nodes']} nodes)")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
