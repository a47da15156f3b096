"""Throughput and peak memory of the evidence parsers on large generated files.

    .venv/bin/python bench/bench_parsers.py                      # ~200 MB of each format
    .venv/bin/python bench/bench_parsers.py --size-mb 1024 --formats junit promptfoo-jsonl
    .venv/bin/python bench/bench_parsers.py --size-mb 100 --long-tokens 4 8 16 32

Each file is generated in a temporary directory in the shape its tool writes, then parsed by
``read_evidence`` in a fresh subprocess; the table shows MB/s, the child's peak RSS (its
``ru_maxrss`` from ``os.wait4``) and the parse time as a ratio to ``sha256sum`` of the same file,
measured in the same run right before the parse (the file is in the page cache for both), so
the ratio is comparable across machines and loads. The generic formats are generated at their cap
of 10,000 metrics (a few hundred KB) whatever ``--size-mb`` says: every row is a metric the gate
keeps. The formats read whole (lm-eval, Inspect ``.json``, DeepEval) are measured just under
their size cap and again at ``--size-mb``, where they must be refused before they are read.
``--long-tokens`` adds files holding one JUnit attribute and one promptfoo string of each size
(MB = 10**6 bytes): the time per MB must stay flat (or the token be refused at its stated cap).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
GENERIC_METRICS = 10_000


# --- generators: each yields chunks of bytes until the target size ------------------------


def _fill(target: int, head: bytes, block: Callable[[int], bytes], tail: bytes, sep: bytes = b"") -> Iterator[bytes]:
    yield head
    written, i = len(head) + len(tail), 0
    while written < target:
        chunk = (sep if i else b"") + block(i)
        written += len(chunk)
        i += 1
        yield chunk
    yield tail


def gen_junit(target: int) -> Iterator[bytes]:
    cases = []
    for k in range(500):
        body = {0: '<failure message="assert 0.71 &gt;= 0.8">Traceback...\nAssertionError</failure>', 1: '<skipped type="pytest.xfail" message="known"/>'}.get(k % 25, "")
        cases.append(f'<testcase classname="tests.test_eval" name="test_case_{k}" time="0.012">{body}</testcase>')
    cases_xml = "".join(cases)

    def block(i: int) -> bytes:
        return (f'<testsuite name="suite-{i}" tests="500" failures="20" skipped="20" timestamp="2025-03-04T10:00:00" hostname="ci">'
                f"{cases_xml}</testsuite>\n").encode()

    return _fill(target, b'<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">\n', block, b"</testsuites>\n")


def _promptfoo_result(i: int) -> dict:
    ok = i % 10 != 0
    return {"cost": 0.0001, "gradingResult": {"pass": ok, "score": float(ok), "reason": "Assertion passed" if ok else "Expected 'refund'",
            "namedScores": {"accuracy": float(ok)}, "componentResults": [{"pass": ok, "score": float(ok), "reason": "...",
            "assertion": {"type": "icontains", "value": "refund"}}]}, "id": f"id-{i}", "latencyMs": 800, "namedScores": {"accuracy": float(ok)},
            "prompt": {"raw": "You are a support agent. Question: " + "lorem ipsum " * 20, "label": "prompt.txt"},
            "promptId": "abc", "promptIdx": 0, "provider": {"id": "openai:gpt-4o-2024-08-06", "label": ""},
            "response": {"output": "Our refund policy allows returns within 30 days. " * 4}, "score": float(ok), "success": ok,
            "testCase": {"vars": {"q": f"question {i}"}}, "testIdx": i, "vars": {"q": f"question {i}"}, "metadata": {}, "failureReason": 0 if ok else 1}


def gen_promptfoo(target: int) -> Iterator[bytes]:
    head = b'{"evalId": "eval-bench", "results": {"version": 3, "timestamp": "2025-03-04T10:20:11.482Z", "prompts": [], "results": [\n'
    yield head
    written, i, passed = len(head), 0, 0
    while written < target:
        chunk = (b",\n" if i else b"") + json.dumps(_promptfoo_result(i), indent=2).encode()
        passed += i % 10 != 0
        written += len(chunk)
        i += 1
        yield chunk
    stats = {"successes": passed, "failures": i - passed, "errors": 0}
    yield (f'], "stats": {json.dumps(stats)}}}, "config": {{}}, "shareableUrl": null, '
           '"metadata": {"promptfooVersion": "0.107.4"}}\n').encode()


def gen_promptfoo_jsonl(target: int) -> Iterator[bytes]:
    return _fill(target, b"", lambda i: json.dumps(_promptfoo_result(i), separators=(",", ":")).encode() + b"\n", b"")


def gen_lm_eval(target: int) -> Iterator[bytes]:
    tasks = 200
    results = {f"mmlu_{t}": {"alias": f" - mmlu_{t}", "acc,none": 0.6, "acc_stderr,none": 0.01} for t in range(tasks)}
    samples = {f"mmlu_{t}": {"original": 500, "effective": 500} for t in range(tasks)}
    head = json.dumps({"results": results, "n-samples": samples, "model_name": "meta-llama/Llama-3.1-8B-Instruct",
                       "lm_eval_version": "0.4.8", "date": 1741082411.5})[:-1].encode() + b', "configs": {\n'

    prompt = "Question: {{question}}\nAnswer:" * 40

    def block(i: int) -> bytes:  # task configs: the bulk of a real file, here padded to size
        config = json.dumps({"task": f"task_{i}", "doc_to_text": prompt, "metadata": {"version": 1.0}})
        return f'"task_{i}": {config}'.encode()

    return _fill(target, head, block, b"}}\n", b",\n")


def _inspect_sample(i: int) -> dict:
    text = "The submission is correct because it names argon2id and a per-user salt. " * 8
    return {"id": i, "epoch": 1, "input": "How do I store passwords?", "target": "argon2",
            "messages": [{"role": "user", "content": "How do I store passwords?"}, {"role": "assistant", "content": text}],
            "scores": {"match": {"value": "C" if i % 5 else "I", "explanation": text}}, "metadata": {}, "events": []}


def _inspect_header(n: int = 1000) -> dict:
    return {"version": 2, "status": "success",
            "eval": {"task": "security_guide", "created": "2025-03-03T09:12:45+00:00", "model": "openai/gpt-4o-2024-08-06",
                     "dataset": {"name": "security_guide", "samples": n}, "packages": {"inspect_ai": "0.3.88"}, "config": {}},
            "results": {"total_samples": n, "completed_samples": n, "scores": [{"name": "match", "scorer": "match", "scored_samples": n,
                        "metrics": {"accuracy": {"name": "accuracy", "value": 0.8}, "stderr": {"name": "stderr", "value": 0.01}}}]},
            "stats": {}}


def gen_inspect_json(target: int) -> Iterator[bytes]:
    """Samples first, results last, so the results can state the number of samples written."""
    log = _inspect_header()
    log.pop("results")
    header = json.dumps(log, indent=2)[:-2].encode() + b',\n  "samples": [\n'
    n = [0]

    def block(i: int) -> bytes:
        n[0] += 1
        return json.dumps(_inspect_sample(i), indent=2).encode()

    yield from _fill(target, header, block, b"", b",\n")
    yield b'], "results": ' + json.dumps(_inspect_header(n[0])["results"]).encode() + b"}\n"


def write_inspect_eval(path: Path, target: int) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:  # stored: the size is the target
        i = 0
        while path.stat().st_size < target:
            archive.writestr(f"samples/{i}_epoch_1.json", json.dumps(_inspect_sample(i), indent=2))
            i += 1
            if i % 1000 == 0:
                archive.fp.flush()
        archive.writestr("header.json", json.dumps(_inspect_header(i), indent=2))


def gen_deepeval(target: int) -> Iterator[bytes]:
    def block(i: int) -> bytes:
        ok = i % 4 != 0
        counts[ok] += 1
        return json.dumps({"name": f"test_case_{i}", "input": "What is the refund policy? " * 5, "actualOutput": "30 days. " * 20,
                           "success": ok, "metricsData": [{"name": "Answer Relevancy", "threshold": 0.7, "success": ok, "score": 0.9 if ok else 0.4,
                           "reason": "The answer addresses the question. " * 5, "strictMode": False, "evaluationModel": "gpt-4.1"}],
                           "runDuration": 1.2, "order": i}).encode()

    counts = [0, 0]
    yield from _fill(target, b'{"testFile": "test_bot.py", "testCases": [', block, b"", b", ")
    yield f'], "hyperparameters": {{"model": "gpt-4o-mini"}}, "testPassed": {counts[1]}, "testFailed": {counts[0]}}}'.encode()


def gen_openai_evals(target: int) -> Iterator[bytes]:
    spec = {"spec": {"completion_fns": ["gpt-4o"], "eval_name": "bench.dev.v0", "run_id": "r", "created_at": "2025-03-04 10:15:30.1"}}

    def block(i: int) -> bytes:
        sampling = {"run_id": "r", "event_id": 2 * i, "sample_id": f"s.{i}", "type": "sampling",
                    "data": {"prompt": [{"role": "user", "content": "lorem ipsum " * 30}], "sampled": ["answer " * 20]}, "created_by": "", "created_at": "2025-03-04 10:15:31+00:00"}
        match = {"run_id": "r", "event_id": 2 * i + 1, "sample_id": f"s.{i}", "type": "match",
                 "data": {"correct": i % 3 != 0, "expected": "a", "picked": "a"}, "created_by": "", "created_at": "2025-03-04 10:15:31+00:00"}
        return (json.dumps(sampling) + "\n" + json.dumps(match) + "\n").encode()

    n = [0]

    def counted(i: int) -> bytes:
        n[0] += 1
        return block(i)

    yield from _fill(target, json.dumps(spec).encode() + b"\n", counted, b"")
    correct = sum(1 for i in range(n[0]) if i % 3 != 0)
    yield json.dumps({"final_report": {"accuracy": correct / n[0]}}).encode() + b"\n"


def gen_generic_json(target: int) -> Iterator[bytes]:
    rows = [{"metric": f"m{i}", "value": 0.5, "n": 10, "passed": 5, "failed": 5} for i in range(GENERIC_METRICS)]
    yield json.dumps({"tool": "bench", "metrics": rows}).encode()


def gen_generic_csv(target: int) -> Iterator[bytes]:
    yield b"metric,value,n,passed,failed\n" + "".join(f"m{i},0.5,10,5,5\n" for i in range(GENERIC_METRICS)).encode()


def gen_junit_long_attribute(target: int) -> Iterator[bytes]:
    """One testcase whose failure message is a single attribute of ``target`` bytes."""
    yield b'<?xml version="1.0" encoding="utf-8"?><testsuite name="s" tests="2" failures="1"><testcase name="long"><failure message="'
    for done in range(0, target, 1 << 20):
        yield b"x" * min(1 << 20, target - done)
    yield b'"/></testcase><testcase name="ok"/></testsuite>\n'


def gen_promptfoo_long_string(target: int) -> Iterator[bytes]:
    """One promptfoo result whose output is a single string of ``target`` bytes."""
    yield b'{"results": {"version": 3, "results": [{"success": true, "score": 1, "provider": {"id": "openai:gpt-4o"}, "response": {"output": "'
    for done in range(0, target, 1 << 20):
        yield b"x" * min(1 << 20, target - done)
    yield b'"}}], "stats": {"successes": 1, "failures": 0, "errors": 0}}}\n'


CAPS_MB = {"lm-eval": 32, "inspect (.json)": 64, "deepeval": 64}
"""Formats read whole, with the size (MiB) past which they are refused before being read."""

GENERATORS: dict[str, tuple[str, str, Callable[[int], Iterator[bytes]] | None]] = {
    # label: (format, file suffix, generator; None = written by a function of its own)
    "junit": ("junit", ".xml", gen_junit),
    "promptfoo": ("promptfoo", ".json", gen_promptfoo),
    "promptfoo-jsonl": ("promptfoo-jsonl", ".jsonl", gen_promptfoo_jsonl),
    "lm-eval": ("lm-eval", ".json", gen_lm_eval),
    "inspect (.json)": ("inspect", ".json", gen_inspect_json),
    "inspect (.eval)": ("inspect", ".eval", None),
    "deepeval": ("deepeval", ".json", gen_deepeval),
    "openai-evals": ("openai-evals", ".jsonl", gen_openai_evals),
    "generic-json": ("generic-json", ".json", gen_generic_json),
    "generic-csv": ("generic-csv", ".csv", gen_generic_csv),
}


def generate(label: str, directory: Path, size_mb: int) -> Path:
    _, suffix, gen = GENERATORS[label]
    mb = size_mb
    path = directory / (label.replace(" ", "").replace("(", "_").replace(")", "").replace(".", "") + suffix)
    if gen is None:
        write_inspect_eval(path, mb << 20)
        return path
    with path.open("wb") as f:
        for chunk in gen(mb << 20):
            f.write(chunk)
    return path


# --- measuring ------------------------------------------------------------------------------


def worker(fmt: str, path: str) -> None:
    """Runs in the child: parse once, print what was found and how long it took."""
    from promotion_gate.checklists.evidence import read_evidence
    from promotion_gate.checklists.evidence.base import EvidenceError

    start = time.perf_counter()
    try:
        with open(path, "rb") as f:
            parsed, _, size = read_evidence(fmt, f, max_bytes=4 << 30)
        rate = parsed.metrics.get("pass_rate")
        outcome = f"{len(parsed.metrics)} metrics" + (f", pass_rate {rate.value:.3f} n={rate.n}" if rate else "")
        if len(parsed.groups) > 1:
            outcome += f", {len(parsed.groups)} model groups"
    except EvidenceError as exc:
        size, outcome = os.path.getsize(path), f"ERROR {exc.reason[:80]}"
    print(json.dumps({"seconds": time.perf_counter() - start, "size": size, "outcome": outcome}))


def generate_in_child(label: str, directory: Path, size_mb: int) -> Path:
    """Generation runs in its own process so this one stays small: on Linux a child's ru_maxrss
    starts from its parent's RSS at spawn, and a big parent would inflate every reading."""
    cmd = [sys.executable, __file__, "--generate", label, str(directory), str(size_mb)]
    return Path(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip())


def sha256sum_seconds(path: Path) -> float:
    """Wall time of ``sha256sum`` on the file (run twice; the first warms the page cache)."""
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    return time.perf_counter() - start


def measure(fmt: str, path: Path) -> dict:
    sha = sha256sum_seconds(path)
    return {**_parse_in_child(fmt, path), "sha256sum": sha}


def _parse_in_child(fmt: str, path: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", fmt, str(path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=ROOT)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        return {"seconds": float("nan"), "size": path.stat().st_size, "outcome": f"child exited {child.returncode}", "rss_mb": usage.ru_maxrss / 1024}
    return {**json.loads(out), "rss_mb": usage.ru_maxrss / 1024}  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200, help="size of each generated file (default 200)")
    parser.add_argument("--formats", nargs="*", default=list(GENERATORS), choices=list(GENERATORS), metavar="FORMAT")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a temporary directory, removed after)")
    parser.add_argument("--worker", nargs=2, metavar=("FORMAT", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", nargs=3, metavar=("LABEL", "DIR", "MB"), help=argparse.SUPPRESS)
    parser.add_argument("--long-tokens", nargs="*", type=int, default=[], metavar="MB",
                        help="also time one JUnit attribute and one promptfoo string of each size (MB = 10**6 bytes)")
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    if args.generate:
        label, directory, mb = args.generate
        print(generate(label, Path(directory), int(mb)))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print("| format | file MB | seconds | MB/s | x sha256sum | peak RSS MB | result |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for label in args.formats:
            sizes = [args.size_mb]
            if label in CAPS_MB and args.size_mb >= CAPS_MB[label]:
                sizes = [CAPS_MB[label] - 2, args.size_mb]  # just under the cap, then refused at the full size
            for size in sizes:
                path = generate_in_child(label, Path(tmp), size)
                _row(label, measure(GENERATORS[label][0], path))
                path.unlink()
        for mb in args.long_tokens:
            for label, fmt, gen, suffix in (("junit: one attribute", "junit", gen_junit_long_attribute, ".xml"),
                                            ("promptfoo: one string", "promptfoo", gen_promptfoo_long_string, ".json")):
                path = Path(tmp) / f"long-{fmt}-{mb}{suffix}"
                with path.open("wb") as f:
                    for chunk in gen(mb * 10**6):
                        f.write(chunk)
                _row(f"{label} of {mb} MB", measure(fmt, path))
                path.unlink()


def _row(label: str, r: dict) -> None:
    mb = r["size"] / (1 << 20)
    ratio = r["seconds"] / r["sha256sum"] if r["sha256sum"] > 0 else float("nan")
    print(f"| {label} | {mb:.1f} | {r['seconds']:.3f} | {mb / r['seconds']:.1f} | {ratio:.1f} | {r['rss_mb']:.0f} | {r['outcome']} |", flush=True)


if __name__ == "__main__":
    main()
