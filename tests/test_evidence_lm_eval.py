"""lm-evaluation-harness results parser.

Fixture shapes: EleutherAI/lm-evaluation-harness results_<date>.json as lm_eval 0.4 writes it
(results{task:{"acc,none", "acc_stderr,none", alias}}, n-samples{task:{original, effective}},
config{model, model_args}, versions, date, git_hash, lm_eval_version, model_name; a real
results_2025-12-17T20-24-58.608862.json in the repository's index was the template) and the 0.3
shape without filter suffixes ("acc", "acc_stderr"; model_args as a "k=v,k=v" string).
"""

import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from promotion_gate.checklists.evidence import read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"


def parse(name: str):
    with (FIXTURES / name).open("rb") as f:
        return read_evidence("lm-eval", f)[0]


def parse_doc(doc) -> object:
    return read_evidence("lm-eval", io.BytesIO(json.dumps(doc).encode()))[0]


def row(m):
    return (m.value, m.n, m.passed, m.failed, m.stderr)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("lm_eval__v0.4_hellaswag_acc_0.6.json", {
            "arc_easy/acc": (0.7542087542087542, 2376, 1792, 584, 0.008834809366391489),
            "arc_easy/acc_norm": (0.7289562289562289, 2376, 1732, 644, 0.009120919741760604),
            "gsm8k/exact_match,strict-match": (0.5, 100, 50, 50, 0.05),
            "gsm8k/exact_match,flexible-extract": (0.52, 100, 52, 48, 0.0502),
            "hellaswag/acc": (0.6, 1000, 600, 400, 0.0048873),
            "hellaswag/acc_norm": (0.78, 1000, 780, 220, None),  # stderr "N/A"
        }),
        ("lm_eval__v0.3_no_filters.json", {
            "hellaswag/acc": (0.2872, None, None, None, 0.0045),
            "hellaswag/acc_norm": (0.3082, None, None, None, 0.0046),
            "lambada_openai/ppl": (38.3, None, None, None, 1.45),
            "lambada_openai/acc": (0.3749, None, None, None, 0.0067),
        }),
    ],
)
def test_metrics_per_fixture(name, expected):
    parsed = parse(name)
    assert {k: row(m) for k, m in parsed.metrics.items()} == expected


def test_provenance():
    prov = parse("lm_eval__v0.4_hellaswag_acc_0.6.json").provenance
    assert (prov.tool, prov.tool_version, prov.model) == ("lm-evaluation-harness", "0.4.8", "meta-llama/Llama-3.1-8B-Instruct")
    assert prov.dataset == "arc_easy,gsm8k,hellaswag"
    assert prov.created_at == datetime.fromtimestamp(1741082411.5230675, tz=timezone.utc)
    old = parse("lm_eval__v0.3_no_filters.json").provenance
    assert (old.tool_version, old.model, old.created_at) == (None, "EleutherAI/pythia-160m", None)


@pytest.mark.parametrize(
    "config, model_name, expected",
    [
        ({"model": "hf", "model_args": {"pretrained": "org/m", "dtype": "float"}}, "", "org/m"),
        ({"model": "openai-chat-completions", "model_args": "model=gpt-4o-mini"}, None, "gpt-4o-mini"),
        ({"model": "vllm", "model_args": None}, None, "vllm"),
        # lm-eval writes model_name from model_args (GeneralConfigTracker._get_model_name: the first
        # of peft=, delta=, pretrained=, model=, path=, engine= found): an adapter names the model
        ({"model": "hf", "model_args": "pretrained=org/base,peft=org/adapter"}, "org/adapter", "org/adapter"),
        ({"model": "hf", "model_args": "pretrained=org/m,dtype=float"}, "org/m", "org/m"),
        ({"model": "openai-chat-completions", "model_args": "model=gpt-4o-mini-2024-07-18"}, "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18"),
        ({"model": "hf", "model_args": {"pretrained": "org/m"}}, "org/m", "org/m"),
        ({"model": "hf"}, "org/named", "org/named"),  # no model_args to name a model: model_name stands alone
    ],
)
def test_model_comes_from_model_name_then_model_args_then_model(config, model_name, expected):
    doc = {"results": {"t": {"acc,none": 0.5}}, "config": config, "model_name": model_name}
    assert parse_doc(doc).provenance.model == expected


def test_group_aggregates_are_read_and_a_group_in_both_sections_is_read_once():
    # lm-eval 0.4 writes a group's aggregate in "results" and again in "groups", with the same values
    doc = {"results": {"mmlu": {"acc,none": 0.6}}, "groups": {"mmlu": {"acc,none": 0.6}, "mmlu_stem": {"acc,none": 0.55}}}
    metrics = parse_doc(doc).metrics
    assert (metrics["mmlu/acc"].value, metrics["mmlu_stem/acc"].value) == (0.6, 0.55)


def test_one_metric_reported_twice_with_the_same_value_is_read_once():
    metrics = parse_doc({"results": {"t": {"acc": 0.6, "acc,none": 0.6}}, "n-samples": {"t": {"original": 10, "effective": 10}}}).metrics
    assert list(metrics) == ["t/acc"] and row(metrics["t/acc"])[:2] == (0.6, 10)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("lm_eval__bad__nan_metric.json", "results['gsm8k'] exact_match,strict-match is nan, not a finite number"),
        ("lm_eval__bad__no_results.json", "no 'results' object of tasks"),
        ("promptfoo__v3_pass_rate_0.75.json", "results['version'] is int, not an object"),
        ("junit__pytest_with_xfail.xml", "lm-eval results is not valid JSON: Expecting value at line 1, column 1"),
    ],
)
def test_bad_files_are_refused_with_the_reason(name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse(name)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "lm-eval results is empty"),
        (b'{"results": {"t": {"acc,none": 0.5}', "not valid JSON: Expecting ',' delimiter"),
        (b'{"results": {"t": {"acc,none": Infinity}}}', "acc,none is inf"),
        (b'{"results": {"t": {"alias": "t"}}}', "no numeric metric"),
        (b'{"results": {"t": 3}}', "results['t'] is int, not an object"),
        (b'{"results": {"t": {"acc,none": 0.5}}, "n-samples": {"t": {"effective": -3}}}', "n-samples['t'].effective is -3"),
        (b'{"results": {"t": {"acc,none": 0.5}}, "date": "soon"}', "date 'soon' is not an ISO 8601"),
        (b"[" * 50_000 + b"]" * 50_000, "nested deeper than 512 levels"),
        (b"[" * 513 + b"]" * 513, "nested deeper than 512 levels"),
        (b'{"results": {"t": {"acc,none": 0.5, "note": "\xe9t\xe9"}}}', "not UTF-8: byte 0xe9 at offset 45"),
        (b'{"results": {"t": {"acc,none": 1' + b"0" * 5000 + b"}}}", "not usable JSON"),
    ],
)
def test_malformed_bytes_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        read_evidence("lm-eval", io.BytesIO(data))


def test_too_many_metrics_are_refused(monkeypatch):
    from promotion_gate.checklists.evidence import lm_eval

    monkeypatch.setattr(lm_eval, "MAX_METRICS", 2)
    with pytest.raises(EvidenceError, match="more than 2 metrics"):
        parse_doc({"results": {"t": {"acc,none": 0.5, "acc_norm,none": 0.5, "f1,none": 0.5}}})


# --- direction, groups without samples, the model, the file's own counts, hostile input ----------


def test_the_tools_own_direction_is_carried_and_sources_must_agree():
    doc = {"results": {"t": {"acc,none": 0.5, "word_perplexity,none": 1234.5}}, "n-samples": {"t": {"original": 10, "effective": 10}},
           "higher_is_better": {"t": {"acc": True, "word_perplexity": False}}}
    metrics = parse_doc(doc).metrics
    assert (metrics["t/acc"].higher_is_better, metrics["t/word_perplexity"].higher_is_better) == (True, False)
    doc["configs"] = {"t": {"metric_list": [{"metric": "word_perplexity", "higher_is_better": True}]}}
    with pytest.raises(EvidenceError, match=re.escape("configs['t'].metric_list: higher_is_better of t/word_perplexity contradicts")):
        parse_doc(doc)


def test_the_fixtures_config_metric_list_gives_the_direction():
    metrics = parse("lm_eval__v0.4_hellaswag_acc_0.6.json").metrics
    assert metrics["hellaswag/acc"].higher_is_better is True
    assert all(m.higher_is_better is True for m in metrics.values())  # every metric_list entry says true


def test_a_metric_without_a_stated_direction_has_none():
    assert parse_doc({"results": {"t": {"f1,none": 0.5}}}).metrics["t/f1"].higher_is_better is None


def test_group_aggregates_have_no_sample_count():
    doc = {"results": {"mmlu_stem": {"acc,none": 0.55}}, "groups": {"mmlu": {"acc,none": 0.6}},
           "n-samples": {"mmlu_stem": {"original": 100, "effective": 100}}}
    metrics = parse_doc(doc).metrics
    assert (metrics["mmlu_stem/acc"].n, metrics["mmlu/acc"].n, metrics["mmlu/acc"].passed) == (100, None, None)


@pytest.mark.parametrize(
    "config, model_name, expected",
    [
        ({"model": "openai-chat-completions", "model_args": "model=gpt-4o-2024-08-06"}, None,
         ("openai", "gpt-4o-2024-08-06", None, "model=gpt-4o-2024-08-06")),
        ({"model": "anthropic-chat", "model_args": "model=claude-3-5-sonnet-20241022"}, None,
         ("anthropic", "claude-3-5-sonnet-20241022", None, "model=claude-3-5-sonnet-20241022")),
        ({"model": "hf", "model_args": "pretrained=EleutherAI/pythia-160m,revision=step100000"}, None,
         (None, "EleutherAI/pythia-160m", "step100000", "pretrained=EleutherAI/pythia-160m,revision=step100000")),
        ({"model": "local-completions", "model_args": "model=gpt-4o,base_url=http://x"}, None,
         (None, "gpt-4o", None, "model=gpt-4o,base_url=http://x")),
        ({}, None, (None, None, None, None)),
    ],
)
def test_the_model_group_is_read_from_the_backend_and_model_args(config, model_name, expected):
    parsed = parse_doc({"results": {"t": {"acc,none": 0.5}}, "config": config, "model_name": model_name})
    assert [(g.provider, g.model, g.version, g.raw) for g in parsed.groups] == [expected]
    assert parsed.groups[0].metrics == parsed.metrics


@pytest.mark.parametrize(
    "config, model_name, reason",
    [
        # the review's h9-2: a Llama run relabelled as the manifest's model through model_name
        ({"model": "hf", "model_args": "pretrained=meta-llama/Meta-Llama-3-8B-Instruct"}, "gpt-4o-mini-2024-07-18",
         "model_name 'gpt-4o-mini-2024-07-18' is not the model config.model_args names ('meta-llama/Meta-Llama-3-8B-Instruct')"),
        ({"model": "openai-chat-completions", "model_args": "model=gpt-4o-2024-08-06"}, "gpt-4o-mini-2024-07-18",
         "model_name 'gpt-4o-mini-2024-07-18' is not the model config.model_args names ('gpt-4o-2024-08-06')"),
        ({"model": "hf", "model_args": "pretrained=org/base,peft=org/adapter"}, "org/base",
         "model_name 'org/base' is not the model config.model_args names ('org/adapter')"),
        ({"model": "hf", "model_args": {"pretrained": "org/m"}}, "org/other",
         "model_name 'org/other' is not the model config.model_args names ('org/m')"),
    ],
)
def test_a_model_name_the_model_args_contradict_is_refused(config, model_name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_doc({"results": {"t": {"acc,none": 0.5}}, "config": config, "model_name": model_name})


def test_a_file_without_n_samples_says_so():
    assert parse("lm_eval__v0.3_no_filters.json").notes == (
        "lm-eval file has no n-samples (lm-eval 0.3 or older): no metric carries a sample count",)
    assert parse("lm_eval__v0.4_hellaswag_acc_0.6.json").notes == ()


@pytest.mark.parametrize(
    "doc, reason",
    [
        ({"results": {"t": {"acc,none": 0.5}}, "n-samples": {"t": {"original": 10, "effective": 200}}},
         "n-samples['t']: effective 200 is more than original 10"),
        ({"results": {"t": {"acc,none": 1.5}}}, "t/acc is 1.5: a rate outside [0, 1]"),
        ({"results": {"t": {"exact_match,strict-match": -0.2}}}, "t/exact_match,strict-match is -0.2: a rate outside [0, 1]"),
        ({"results": {"t": {"acc,none": 0.5, "acc_stderr,none": float("nan")}}}, "acc_stderr,none is nan, not a finite number"),
        ({"results": {"t": {"acc,none": 0.5}}, "n-samples": {"t": {"effective": 2**64}}}, "n-samples['t'].effective is 18446744073709551616, not a non-negative whole number below 2**63"),
        ({"results": {"t": {"acc,none": 0.5}}, "n-samples": {"t": {"effective": 10.0}}}, "n-samples['t'].effective is 10.0"),
        # the review's h9-1: "acc" (0.3 style) and "acc,none" both are arc_easy/acc; the first one read won
        ({"results": {"arc_easy": {"alias": "arc_easy", "acc": 0.95, "acc,none": 0.60, "acc_stderr,none": 0.016}},
          "n-samples": {"arc_easy": {"original": 1000, "effective": 1000}}},
         "results['arc_easy'] 'acc' and results['arc_easy'] 'acc,none' both give arc_easy/acc, with different values (0.95 and 0.6)"),
        ({"results": {"arc_easy": {"acc,none": 0.60, "acc": 0.95}}},
         "results['arc_easy'] 'acc,none' and results['arc_easy'] 'acc' both give arc_easy/acc, with different values (0.6 and 0.95)"),
        ({"results": {"mmlu": {"acc,none": 0.6}}, "groups": {"mmlu": {"acc,none": 0.1}}},
         "results['mmlu'] 'acc,none' and groups['mmlu'] 'acc,none' both give mmlu/acc, with different values (0.6 and 0.1)"),
        ({"results": {"t": {"exact_match,none": 0.5, "exact_match": 0.9}}},
         "results['t'] 'exact_match,none' and results['t'] 'exact_match' both give t/exact_match"),
    ],
)
def test_numbers_the_file_cannot_mean_are_refused(doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_doc(doc)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b'{"results": {"t": {"acc,none": NaN}}}', "results['t'] acc,none is nan, not a finite number"),
        (b'{"results": {"t": {"acc,none": 1e999}}}', "results['t'] acc,none is inf, not a finite number"),
        (b'{"results": {"t": {"acc,none": 0.1, "acc,none": 0.9}}}', "key 'acc,none' appears twice in one object"),
    ],
)
def test_hostile_bytes_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        read_evidence("lm-eval", io.BytesIO(data))


def test_a_byte_order_mark_changes_nothing():
    data = (FIXTURES / "lm_eval__v0.4_hellaswag_acc_0.6.json").read_bytes()
    assert read_evidence("lm-eval", io.BytesIO(b"\xef\xbb\xbf" + data))[0] == parse("lm_eval__v0.4_hellaswag_acc_0.6.json")


def test_a_file_past_the_cap_is_refused_before_it_is_parsed(monkeypatch):
    from promotion_gate.checklists.evidence import lm_eval

    monkeypatch.setattr(lm_eval, "MAX_BYTES", 100)
    with pytest.raises(EvidenceError, match=re.escape("lm-eval results is larger than the 0 MiB this format is read whole up to")):
        parse("lm_eval__v0.4_hellaswag_acc_0.6.json")
