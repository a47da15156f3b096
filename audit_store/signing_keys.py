"""The Ed25519 key that signs decisions: loaded at run time, never printed, its public half published.

Where the key comes from, first match wins:

1. ``PROMOTION_GATE_SIGNING_KEY_PATH``: a PEM file (PKCS#8, unencrypted) holding an Ed25519 key;
2. ``PROMOTION_GATE_SIGNING_KEY``: the same PEM text in the environment;
3. ``PROMOTION_GATE_SIGNING_KEY_BLOCK``: the name of a Prefect Secret block holding the PEM text;
4. otherwise a demo key, generated once into ``PROMOTION_GATE_DEMO_KEY_DIR`` (default
   ``demo-keys/`` next to the store, never inside it) as ``demo-signing-key.pem`` (mode 0600) with
   its public half ``demo-signing-key.pub.pem``. Every statement it signs says
   ``signingKey.kind: demo``, so reports, the index and ``audit verify`` say "signed with a DEMO
   key: not evidence"; the GitHub path refuses to start with it.

The keys ``audit verify`` and ``audit index`` trust are pinned outside the store: ``--key``, or
``PROMOTION_GATE_TRUSTED_KEYS`` (a PEM file of public keys) / ``PROMOTION_GATE_TRUSTED_KEYS_BLOCK``
(a Prefect Secret block holding them): :func:`pinned_keys`.

The public key is published as ``<store>/keys/<key_id>.pub.pem``. Errors name the setting, never
the key's bytes.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from promotion_gate.checklists.attestation import key_id, parse_public_pem, public_pem

DEMO_KEY_FILE = "demo-signing-key.pem"
DEMO_PUBLIC_FILE = "demo-signing-key.pub.pem"
OLD_DEMO_KEY_FILE = ".demo-signing-key.pem"  # where an older version kept it: inside the store
DEMO_KEY_DIR = "demo-keys"
DEMO_PEM_MARK = b"promotion-gate DEMO key: what it signs is not evidence\n"  # text before the PEM block, which PEM allows
DEMO_MARK = ".demo"
KEYS_DIR = "keys"

if TYPE_CHECKING:
    from promotion_gate.config.settings import Settings


class SigningKeyError(Exception):
    pass


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key; its repr shows the key id and where it came from, nothing else."""

    private_key: Ed25519PrivateKey = field(repr=False)
    key_id: str
    source: str
    demo: bool = False

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey, source: str, demo: bool = False) -> "SigningKey":
        return cls(private_key, key_id(private_key.public_key()), source, demo)

    def __reduce__(self):  # never pickled into a Prefect result or a subprocess by accident
        raise TypeError("a SigningKey is not serialisable")


def parse_private_pem(data: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningKeyError(f"{source}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{source}: the key is not an Ed25519 key") from None
    return key


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def load_signing_key(store: str | Path, *, key_path: str | None = None, key_pem: str | None = None,
                     block: str | None = None, demo_dir: str | Path | None = None) -> SigningKey:
    if key_path:
        try:
            data = Path(key_path).read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"PROMOTION_GATE_SIGNING_KEY_PATH: cannot read the key file ({exc.strerror})") from None
        return SigningKey.of(parse_private_pem(data, "PROMOTION_GATE_SIGNING_KEY_PATH"), f"file {key_path}")
    if key_pem:
        return SigningKey.of(parse_private_pem(key_pem.encode(), "PROMOTION_GATE_SIGNING_KEY"), "environment")
    if block:
        return SigningKey.of(parse_private_pem(_read_secret_block(block).encode(), f"Prefect Secret block {block!r}"),
                             f"Prefect Secret block {block}")
    return demo_key(Path(store), demo_dir)


def signing_key_from_settings(store: str | Path, settings: Settings | None = None) -> SigningKey:
    """The gate's key as `settings` (a run's, read once; none given: the environment's) name it."""
    from promotion_gate.config.settings import load_settings

    settings = settings or load_settings()
    secret = settings.signing_key
    return load_signing_key(store, key_path=settings.signing_key_path,
                            key_pem=secret.get_secret_value() if secret is not None else None,
                            block=settings.signing_key_block, demo_dir=settings.demo_key_dir)


def refuse_demo_key(settings, path: str) -> None:
    """``path`` (the GitHub path of the gate, the recertify flow on GitHub) never signs with the demo key:
    with no signing key configured, a start-up error naming the settings, before any side effect."""
    from promotion_gate.config.settings import SettingsError

    if not (settings.signing_key_path or settings.signing_key or settings.signing_key_block):
        raise SettingsError(f"{path} refuses the generated demo key (what it signs is not evidence): set "
                            "PROMOTION_GATE_SIGNING_KEY_PATH, PROMOTION_GATE_SIGNING_KEY or PROMOTION_GATE_SIGNING_KEY_BLOCK")


def _read_secret_block(name: str) -> str:
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(name).get()
    except Exception as exc:  # the block is absent or the server is down: name it, show nothing else
        raise SigningKeyError(f"Prefect Secret block {name!r}: cannot load it ({type(exc).__name__})") from None
    if not isinstance(value, str):
        raise SigningKeyError(f"Prefect Secret block {name!r}: holds no PEM text")
    return value


def demo_key_dir(store: Path, demo_dir: str | Path | None = None) -> Path:
    """Where the demo key lives: the setting, or ``demo-keys/`` next to the store; never inside it."""
    folder = Path(demo_dir) if demo_dir else store.resolve().parent / DEMO_KEY_DIR
    resolved, root = folder.resolve(), store.resolve()
    if resolved == root or root in resolved.parents:
        raise SigningKeyError(f"PROMOTION_GATE_DEMO_KEY_DIR: {folder} is inside the audit store; whoever writes the store could sign with it")
    return folder


def demo_key(store: Path, demo_dir: str | Path | None = None) -> SigningKey:
    """The demo key: created once outside the store (atomically, so concurrent writers agree), then reused."""
    folder = demo_key_dir(store, demo_dir)
    path = folder / DEMO_KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{DEMO_KEY_FILE}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem(Ed25519PrivateKey.generate()))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another writer made one first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = SigningKey.of(parse_private_pem(path.read_bytes(), f"demo key {path}"), f"demo key {path}", demo=True)
    public = folder / DEMO_PUBLIC_FILE
    if not public.exists():
        tmp = folder / f".{DEMO_PUBLIC_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(DEMO_PEM_MARK + public_pem(key.private_key.public_key()))
        os.replace(tmp, public)
    return key


def publish_public_key(store: Path, key: SigningKey) -> Path:
    """Write ``keys/<key_id>.pub.pem`` (and a ``.demo`` mark for a demo key) if absent."""
    folder = store / KEYS_DIR
    path = folder / f"{key.key_id}.pub.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(public_pem(key.private_key.public_key()))
        os.replace(tmp, path)
    if key.demo and not (folder / f"{key.key_id}{DEMO_MARK}").exists():
        (folder / f"{key.key_id}{DEMO_MARK}").write_text(
            "This key was generated for a demo: what it signed is not evidence. Each signed statement\n"
            "says so itself (signingKey.kind: demo); this file is only a courtesy. Configure\n"
            "PROMOTION_GATE_SIGNING_KEY_PATH (or a Prefect Secret block) in production.\n")
    return path


def read_public_keys(paths: Iterable[Path], keys_dir: Path | None = None) -> tuple[dict, set[str], list[str]]:
    """(key id -> public key, demo key ids, notes). A key is known by its own digest, not its file name."""
    keys, demo, notes = {}, set(), []
    for path in paths:
        try:
            public = parse_public_pem(path.read_bytes())
        except (OSError, ValueError) as exc:
            notes.append(f"{path.name}: not an Ed25519 public key ({type(exc).__name__})")
            continue
        kid = key_id(public)
        if path.name.endswith(".pub.pem") and keys_dir is not None and path.name != f"{kid}.pub.pem":
            notes.append(f"{KEYS_DIR}/{path.name} holds key {kid[:16]}... (named after another key)")
        keys[kid] = public
        if keys_dir is not None and (keys_dir / f"{kid}{DEMO_MARK}").exists():
            demo.add(kid)
    return keys, demo, notes




def lock_reading_keys(store: str | Path, paths: Iterable[str | Path] = (), *, settings=None) -> tuple[dict, str]:
    """The keys a read-only command (`inventory`, `policy diff`) verifies production locks with, and
    a line saying which: ``--key`` files, else the trusted-keys setting, else the public half of the
    gate's configured signing key, else the demo key next to ``store`` when one exists (said to be
    a DEMO key). Nothing is generated and nothing written; none found: no key, and every lock is
    unverified. A key published in the store by someone else is never among them."""
    demo: set = set()
    pinned = pinned_keys(paths, settings=settings, demo=demo)
    if pinned:
        said = "the DEMO key (not evidence)" if demo >= set(pinned) else f"{len(pinned)} pinned key(s)"
        return pinned, f"locks verified against {said} and the ledger of {store}"
    if settings is not None and (settings.signing_key_path or settings.signing_key or settings.signing_key_block):
        key = signing_key_from_settings(store, settings).private_key.public_key()
        return {key_id(key): key}, f"locks verified against the gate's signing key and the ledger of {store}"
    public = demo_key_dir(Path(store), settings.demo_key_dir if settings is not None else None) / DEMO_PUBLIC_FILE
    if public.is_file():
        keys = {key_id(k): k for k in split_pem_keys(public.read_bytes(), str(public))}
        return keys, f"locks verified against the DEMO key {public} (not evidence) and the ledger of {store}"
    return {}, ("no key to verify the locks with (--key, or PROMOTION_GATE_TRUSTED_KEYS): every lock is "
                "unverified (PG-RECERT-007)")


def split_pem_keys(data: bytes, source: str) -> list[Ed25519PublicKey]:
    """Every PEM public key in ``data`` (one file may pin several); SigningKeyError naming ``source`` otherwise."""
    blocks = re.findall(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", data, flags=re.S)
    if not blocks:
        raise SigningKeyError(f"{source}: holds no PEM public key")
    keys = []
    for block in blocks:
        try:
            keys.append(parse_public_pem(block))
        except (ValueError, UnsupportedAlgorithm):
            raise SigningKeyError(f"{source}: holds a key that is not an Ed25519 public key") from None
    return keys


def pinned_keys(paths: Iterable[str | Path] = (), *, settings=None, demo: set | None = None) -> dict:
    """Key id -> public key of every key pinned outside the store: ``--key`` files, else the trusted-keys setting.
    ``demo``, when given, receives the ids of pinned keys whose file says it is the demo key."""
    found: list[Ed25519PublicKey] = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"--key {p}: cannot read it ({exc.strerror or type(exc).__name__})") from None
        keys = split_pem_keys(data, f"--key {p}")
        found += keys
        if demo is not None and DEMO_PEM_MARK.strip() in data:
            demo.update(key_id(k) for k in keys)
    if not found and settings is not None and settings.trusted_keys:
        try:
            data = Path(settings.trusted_keys).read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"PROMOTION_GATE_TRUSTED_KEYS: cannot read {settings.trusted_keys} ({exc.strerror or type(exc).__name__})") from None
        found += split_pem_keys(data, "PROMOTION_GATE_TRUSTED_KEYS")
    if not found and settings is not None and settings.trusted_keys_block:
        text = _read_secret_block(settings.trusted_keys_block)
        found += split_pem_keys(text.encode(), f"Prefect Secret block {settings.trusted_keys_block!r}")
    return {key_id(k): k for k in found}
