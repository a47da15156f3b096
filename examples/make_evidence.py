"""Writes the example repository's evaluation results in the real output shapes of the tools.

promptfoo: the JSON that `promptfoo eval -o results.json` writes (results.version 3).
JUnit: the XML that `pytest --junitxml` writes. Run: python examples/make_evidence.py
The outputs are committed; this script documents how they were made and regenerates them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).parent / "repo" / "ai-systems"
STAMP = "2026-11-20T09:30:00.000Z"


def promptfoo(path: Path, provider: str, n: int, failures: int, seed: int, named: tuple[str, ...] = ()) -> None:
    rng = random.Random(seed)
    failed = set(rng.sample(range(n), failures))
    results = []
    for i in range(n):
        ok = i not in failed
        score = 1.0 if ok else round(rng.uniform(0.0, 0.5), 3)
        results.append({
            "id": f"{seed:04x}-{i:05d}",
            "promptIdx": 0,
            "testIdx": i,
            "promptId": "a1b2c3",
            "provider": {"id": provider, "label": ""},
            "prompt": {"raw": f"case {i}", "label": "main"},
            "vars": {"question": f"example question {i}"},
            "response": {"output": "redacted in example", "tokenUsage": {"total": 120, "prompt": 80, "completion": 40}},
            "success": ok,
            "score": score,
            "namedScores": {name: round(score if ok else score / 2, 3) for name in named},
            "latencyMs": 400 + rng.randint(0, 900),
            "gradingResult": {"pass": ok, "score": score, "reason": "All assertions passed" if ok else "Expected output to contain the refund policy"},
            "failureReason": 0 if ok else 1,
            "testCase": {"vars": {"question": f"example question {i}"}, "assert": [{"type": "llm-rubric", "value": "answers from the knowledge base"}]},
            "metadata": {},
        })
    doc = {
        "evalId": f"eval-{seed:04x}-2026-11-20T09:30:00",
        "results": {
            "version": 3,
            "timestamp": STAMP,
            "prompts": [{"raw": "{{question}}", "label": "main", "provider": provider, "metrics": {"score": sum(r["score"] for r in results), "testPassCount": n - failures, "testFailCount": failures, "testErrorCount": 0}}],
            "results": results,
            "stats": {"successes": n - failures, "failures": failures, "errors": 0, "tokenUsage": {"total": 120 * n, "prompt": 80 * n, "completion": 40 * n, "cached": 0}},
        },
        "config": {"description": path.parent.parent.name, "providers": [provider], "prompts": ["{{question}}"]},
        "shareableUrl": None,
        "metadata": {"promptfooVersion": "0.112.5", "nodeVersion": "v20.20.2", "platform": "linux", "arch": "x64", "exportedAt": STAMP, "evaluationCreatedAt": STAMP},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def junit(path: Path, suite: str, n: int, failures: int, skipped: int = 0) -> None:
    cases = []
    for i in range(n):
        name = f"test_{suite.replace('-', '_')}_{i:03d}"
        body = ""
        if i < failures:
            body = f'<failure message="AssertionError: answer missed the expected fact">assert False</failure>'
        elif i < failures + skipped:
            body = '<skipped type="pytest.skip" message="provider quota">skipped</skipped>'
        cases.append(f'<testcase classname="evals.test_{suite.replace("-", "_")}" name={quoteattr(name)} time="0.{i % 9 + 1}12">{body}</testcase>')
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
        f'<testsuite name="pytest" errors="0" failures="{failures}" skipped="{skipped}" tests="{n}" time="{n * 0.5:.3f}" '
        f'timestamp="2026-11-20T09:30:00.000000+00:00" hostname="ci-runner-7">' + "".join(cases) + "</testsuite></testsuites>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(xml)


def main() -> None:
    s = ROOT / "helpdesk-summarizer" / "evals"
    junit(s / "junit.xml", "helpdesk-summarizer", 240, 2, 1)
    promptfoo(s / "promptfoo.json", "openai:chat:gpt-4o-mini-2024-07-18", 80, 3, seed=1)
    a = ROOT / "support-assistant" / "evals"
    promptfoo(a / "promptfoo.json", "anthropic:messages:claude-sonnet-4-20250514", 400, 2, seed=2, named=("groundedness", "tone"))
    junit(a / "fallback-drill.xml", "fallback-drill", 120, 1)
    b = ROOT / "loan-prescreener" / "evals"
    promptfoo(b / "promptfoo.json", "openai:chat:gpt-4o-2024-05-13", 150, 33, seed=3)


if __name__ == "__main__":
    main()
