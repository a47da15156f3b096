"""Checks of what the team declares: owner, vendor, data, logging, tools, fallback, impact, review."""

from __future__ import annotations

from promotion_gate.checklists.context import CheckContext
from promotion_gate.checklists.manifest import LoggingMode, Permission
from promotion_gate.checklists.results import CheckResult

UNPINNED = {"latest", "default", "stable", "*", ""}


def owner_and_escalation_are_named(ctx: CheckContext) -> CheckResult:
    """PG-OWNER-001 (its title, controls and remedy: the policy item of this id)."""
    m = ctx.manifest
    if m.escalation is None:
        return ctx.fail("no escalation contact declared", "add escalation.contact (an email or pager address)", owner=m.owner)
    return ctx.passed(f"owner {m.owner}, escalation {m.escalation.contact}", owner=m.owner, escalation=m.escalation.contact)


def vendor_and_model_are_approved(ctx: CheckContext) -> CheckResult:
    """PG-VENDOR-001 (its title, controls and remedy: the policy item of this id)."""
    model = ctx.manifest.model
    provider = ctx.policy.providers.get(model.provider)
    if provider is None:
        approved = ", ".join(sorted(ctx.policy.providers))
        return ctx.fail(f"provider {model.provider!r} is not approved", f"use an approved provider ({approved}) or ask the platform team to approve {model.provider!r}", provider=model.provider)
    if model.name not in provider.models:
        approved = ", ".join(sorted(provider.models))
        return ctx.fail(f"model {model.name!r} is not approved for {model.provider}", f"use one of {approved}", provider=model.provider, model=model.name)
    return ctx.passed(f"{model.provider} {model.name} is approved", provider=model.provider, model=model.name)


def model_version_is_pinned(ctx: CheckContext) -> CheckResult:
    """PG-VENDOR-002 (its title, controls and remedy: the policy item of this id)."""
    model = ctx.manifest.model
    if model.version is None or model.version.strip().lower() in UNPINNED:
        return ctx.fail(f"model version is not pinned ({model.version or 'missing'})", "set model.version to a dated snapshot, e.g. gpt-4o-2024-08-06", model=model.name)
    versions = ctx.policy.approved_model(model.provider, model.name)
    if versions is None:
        return ctx.not_applicable("the model itself is not approved (see PG-VENDOR-001)")
    if model.version not in versions:
        return ctx.fail(f"version {model.version} of {model.name} is not approved", f"use one of {', '.join(versions)}", version=model.version)
    return ctx.passed(f"pinned to approved version {model.version}", version=model.version)


def data_classes_are_allowed(ctx: CheckContext) -> CheckResult:
    """PG-DATA-001 (its title, controls and remedy: the policy item of this id).

    Judges every class the system touches: use_case.data_classes and every data source's
    classification, listed or not (PG-DATA-002 tells the team to list them)."""
    policy, classes = ctx.policy, ctx.data_classes
    unknown = sorted(set(classes) - set(policy.data_classes))
    if unknown:
        return ctx.fail(f"unknown data classes {', '.join(unknown)}", f"use the policy's data classes: {', '.join(policy.data_classes)}", unknown=unknown)
    provider = policy.providers.get(ctx.manifest.model.provider)
    if provider is None:
        return ctx.fail(f"provider {ctx.manifest.model.provider!r} has no data-handling approval", None)
    refused = sorted(set(classes) - set(provider.data_classes))
    if refused:
        return ctx.fail(
            f"{ctx.manifest.model.provider} may not receive {', '.join(refused)}" + _from_sources(ctx, refused),
            f"remove {', '.join(refused)} from what reaches the model, or use a provider approved for it",
            refused=refused,
        )
    return ctx.passed(f"{', '.join(classes)} allowed for {ctx.manifest.model.provider}", data_classes=classes)


def _from_sources(ctx: CheckContext, classes: list[str]) -> str:
    """Which data sources bring classes the team did not list in use_case.data_classes."""
    listed = set(ctx.manifest.use_case.data_classes)
    named = [f"{s.name} ({s.classification})" for s in ctx.manifest.data_sources if s.classification in classes and s.classification not in listed]
    return f" (from data_sources {', '.join(named)})" if named else ""


def data_sources_are_declared(ctx: CheckContext) -> CheckResult:
    """PG-DATA-002 (its title, controls and remedy: the policy item of this id)."""
    sources = ctx.manifest.data_sources
    if not sources:
        return ctx.fail("no data sources declared")
    unknown = sorted({s.classification for s in sources} - set(ctx.policy.data_classes))
    if unknown:
        return ctx.fail(f"data sources with unknown classification {', '.join(unknown)}", f"classify each source as one of {', '.join(ctx.policy.data_classes)}")
    undeclared = sorted({s.classification for s in sources} - set(ctx.manifest.use_case.data_classes))
    if undeclared:
        return ctx.fail(f"data sources carry {', '.join(undeclared)}, not listed in use_case.data_classes (the tier and PG-DATA-001/PG-LOG-001 count them all the same)",
                        f"add {', '.join(undeclared)} to use_case.data_classes")
    return ctx.passed(f"{len(sources)} data source(s) declared", sources=[s.name for s in sources])


def logging_protects_sensitive_data(ctx: CheckContext) -> CheckResult:
    """PG-LOG-001 (its title, controls and remedy: the policy item of this id)."""
    log = ctx.manifest.logging
    if log is None:
        return ctx.fail("no logging declared", "add logging (prompts, responses, redaction, retention_days)")
    limit = ctx.tier_policy.max_log_retention_days
    findings = []
    if log.retention_days > limit:
        findings.append(ctx.fail(f"retention {log.retention_days} days exceeds the {ctx.tier.value} tier limit of {limit}", f"set logging.retention_days to {limit} or less"))
    sensitive = ctx.sensitive_classes
    full = [k for k, mode in (("prompts", log.prompts), ("responses", log.responses)) if mode == LoggingMode.full]
    if sensitive and full:
        findings.append(ctx.fail(f"{' and '.join(full)} logged in full while handling {', '.join(sorted(sensitive))}", "set logging.prompts/responses to redacted or none"))
    unredacted = sorted(sensitive - set(log.redaction))
    redacting = [k for k, mode in (("prompts", log.prompts), ("responses", log.responses)) if mode == LoggingMode.redacted]
    if redacting and unredacted:
        findings.append(ctx.fail(f"redacted logging does not cover {', '.join(unredacted)}", f"add {', '.join(unredacted)} to logging.redaction"))
    if findings:
        return ctx.worst(findings)
    return ctx.passed(f"prompts {log.prompts.value}, responses {log.responses.value}, kept {log.retention_days} days", retention_days=log.retention_days)


def tools_are_least_privilege(ctx: CheckContext) -> CheckResult:
    """PG-TOOLS-001 (its title, controls and remedy: the policy item of this id)."""
    tools = ctx.manifest.use_case.tools
    if not tools:
        return ctx.not_applicable("the system calls no tools")
    findings = []
    for tool in tools:
        if tool.permission == Permission.admin:
            findings.append(ctx.fail(f"tool {tool.name} has admin permission", f"narrow {tool.name} to read or write"))
        elif tool.permission == Permission.write and not tool.justification:
            findings.append(ctx.fail(f"tool {tool.name} writes without a justification", f"add use_case.tools[{tool.name}].justification"))
        elif tool.permission == Permission.write and ctx.manifest.use_case.audience.value == "customer-facing" and not tool.requires_human_approval:
            findings.append(ctx.fail(f"tool {tool.name} writes on behalf of customers without human approval", f"set requires_human_approval: true on {tool.name}"))
    if findings:
        return ctx.worst(findings)
    return ctx.passed(", ".join(f"{t.name}:{t.permission.value}" for t in tools), tools={t.name: t.permission.value for t in tools})


def fallback_is_declared(ctx: CheckContext) -> CheckResult:
    """PG-FALLBACK-001 (its title, controls and remedy: the policy item of this id)."""
    fallback = ctx.manifest.fallback
    if fallback is None:
        return ctx.fail("no fallback declared")
    if fallback.strategy.value == "secondary-model" and fallback.model is None:
        return ctx.fail("strategy secondary-model names no model", "add fallback.model (provider, name, version)")
    return ctx.passed(f"fallback: {fallback.strategy.value}", strategy=fallback.strategy.value)


def fallback_model_is_approved(ctx: CheckContext) -> CheckResult:
    """PG-FALLBACK-002 (its title, controls and remedy: the policy item of this id)."""
    fallback = ctx.manifest.fallback
    if fallback is None or fallback.model is None:
        return ctx.not_applicable("no fallback model")
    fb = fallback.model
    versions = ctx.policy.approved_model(fb.provider, fb.name)
    if versions is None:
        return ctx.fail(f"fallback {fb.provider} {fb.name} is not approved", "use an approved model as fallback")
    if fb.version not in versions:
        return ctx.fail(f"fallback version {fb.version or 'missing'} is not pinned to an approved version", f"use one of {', '.join(versions)}")
    refused = sorted(set(ctx.data_classes) - set(ctx.policy.providers[fb.provider].data_classes))
    if refused:
        return ctx.fail(f"fallback provider {fb.provider} may not receive {', '.join(refused)}", "pick a fallback approved for every data class of the system")
    return ctx.passed(f"fallback {fb.provider} {fb.name} {fb.version} approved", fallback=f"{fb.provider}/{fb.name}")


def user_impact_is_stated(ctx: CheckContext) -> CheckResult:
    """PG-IMPACT-001 (its title, controls and remedy: the policy item of this id)."""
    impact = (ctx.manifest.user_impact or "").strip()
    if len(impact) < 20:
        return ctx.fail("user impact is missing or too short to be useful")
    return ctx.passed("user impact stated", words=len(impact.split()))


def human_review_is_in_the_loop(ctx: CheckContext) -> CheckResult:
    """PG-REVIEW-001 (its title, controls and remedy: the policy item of this id)."""
    review = ctx.manifest.human_review
    if review is None or review.mode == "none":
        return ctx.fail(f"no human review declared for a {ctx.tier.value}-tier system")
    if ctx.manifest.use_case.automated_decisions_about_people and review.mode == "sampled":
        return ctx.fail("automated decisions about people are only sampled", "set human_review.mode to before-action or every-output")
    return ctx.passed(f"human review: {review.mode}", mode=review.mode)
