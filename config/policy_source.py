"""Load the policy. Every command and flow finds it the same way: the `--policy` flag, then the
`PROMOTION_GATE_POLICY_PATH` setting, then the embedded policy; each says which one it used."""

from __future__ import annotations

import os
import stat
import sys
from importlib import resources
from pathlib import Path

from promotion_gate.checklists.checks import CHECKS, MANIFEST_ITEM
from promotion_gate.checklists.policy import Policy, PolicyError, parse_policy, render_embedded_policy
from promotion_gate.checklists.yamldoc import MAX_YAML_BYTES

EMBEDDED = "checklists/policy/policy.yaml"


def policy_origin(flag: str | None, setting: str | None) -> tuple[str | None, str]:
    """Which policy file to read, and how to say where it came from (flag, setting, embedded)."""
    if flag:
        return flag, f"{flag} (--policy)"
    if setting:
        return setting, f"{setting} (PROMOTION_GATE_POLICY_PATH)"
    return None, f"the embedded policy ({EMBEDDED})"


def load_policy(path: str | Path | None = None) -> Policy:
    if path is None:
        data, source = resources.files("promotion_gate.checklists").joinpath("policy/policy.yaml").read_bytes(), EMBEDDED
    else:
        data, source = read_policy_file(path), str(path)
    return policy_from_bytes(data, source)


def read_policy_file(path: str | Path) -> bytes:
    """The bytes of a policy file, refused unless it is a regular file of at most MAX_YAML_BYTES:
    a FIFO nobody writes would hang the reader, /dev/zero never ends, and a 2 GiB file would be
    read whole before the YAML reader refused its size. Opened without blocking (a FIFO opens at
    once), then judged by what was opened (fstat), so a file swapped after a check is still seen."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PolicyError(f"{path}: cannot read the policy: not a regular file (a directory, FIFO or device)")
        if info.st_size > MAX_YAML_BYTES:
            raise PolicyError(f"{path}: cannot read the policy: file is larger than {MAX_YAML_BYTES} bytes")
        os.set_blocking(fd, True)
        data = b""
        while len(data) <= MAX_YAML_BYTES and (chunk := os.read(fd, MAX_YAML_BYTES + 1 - len(data))):
            data += chunk
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_YAML_BYTES:  # grew since fstat
        raise PolicyError(f"{path}: cannot read the policy: file is larger than {MAX_YAML_BYTES} bytes")
    return data


def policy_from_bytes(data: bytes, source: str) -> Policy:
    """A policy from its YAML bytes (a file, or a blob at a commit), refused when an item has no check."""
    policy = parse_policy(data, source)
    unknown = sorted({i.id for i in policy.items} - set(CHECKS) - {MANIFEST_ITEM})
    if unknown:
        raise PolicyError(f"{source}: items without a check: {', '.join(unknown)}")
    return policy


def write_embedded() -> Path:
    """Regenerate checklists/policy_embedded.py from checklists/policy/policy.yaml (a maintainer's
    step after editing the embedded policy; tests/test_policy_embedded.py says when it is due)."""
    folder = Path(str(resources.files("promotion_gate.checklists")))
    target = folder / "policy_embedded.py"
    target.write_text(render_embedded_policy((folder / "policy" / "policy.yaml").read_bytes()), encoding="utf-8")
    return target


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-embedded"]:
        sys.exit("usage: python -m promotion_gate.config.policy_source --write-embedded")
    print(f"wrote {write_embedded()}")
