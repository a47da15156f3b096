"""Reading a store that may be hostile: no symlink, no special file, bounded sizes and lines.

Whoever can write the audit store can plant a symlink to ``/dev/zero`` or to a file outside the
store, a FIFO that never answers, or a ledger line of hundreds of megabytes. Every read of
``audit verify`` and ``audit index`` goes through this module:

- paths are opened component by component from a directory descriptor of the store's root with
  ``O_NOFOLLOW`` (a symlinked file or folder anywhere below the root is refused, whatever it
  points to);
- files are opened ``O_NONBLOCK`` and ``fstat``-ed before any read: only regular files are read
  (a FIFO, a device or a socket is refused, and opening a FIFO this way never blocks);
- a file larger than ``Limits.max_file_bytes`` is refused without being read; a ledger line
  longer than ``Limits.max_line_bytes`` is refused after reading at most that many bytes of it;
- a regular file with more than one name (``st_nlink > 1``: a hard link) is refused: its other
  name may lie outside the store, where whoever can write it rewrites the store's file; a copy
  of the store (``cp -a``, ``rsync -a`` without ``--link-dest``) has one name per file.

A refusal is a :class:`Refused` naming its kind and the path (relative to the store).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import Iterator

MiB = 1 << 20
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
SYMLINK, SPECIAL, TOO_LARGE, LONG_LINE, NOT_DIR, HARD_LINK = (
    "refused symlink", "refused special file", "refused oversized file", "refused oversized line", "refused non-directory",
    "refused hard link")


@dataclass(frozen=True)
class Limits:
    """How much of a store a reader accepts: per file (reports, decision.json, envelope, keys), per ledger line."""

    max_file_bytes: int = 32 * MiB
    max_line_bytes: int = 1 * MiB

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_line_bytes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}: must be a positive number of bytes")


class Refused(Exception):
    """A path the reader will not follow or read: ``kind`` (one of the constants above) and ``path``."""

    def __init__(self, kind: str, path: str, detail: str) -> None:
        super().__init__(f"{kind}: {path}: {detail}")
        self.kind, self.path, self.detail = kind, path, detail


def kind_of(name: str, dir_fd: int) -> str:
    """Why an O_NOFOLLOW open failed with ELOOP/ENOTDIR: a symlink, or not a folder."""
    try:
        mode = os.lstat(name, dir_fd=dir_fd).st_mode
    except OSError:
        return NOT_DIR
    return SYMLINK if stat.S_ISLNK(mode) else NOT_DIR


def open_dir(name: str, dir_fd: int, shown: str) -> int:
    """A descriptor of folder ``name`` in ``dir_fd``; FileNotFoundError if absent; Refused if a symlink or not a folder."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            kind = kind_of(name, dir_fd)
            raise Refused(kind, shown, "a symlink (the store's folders are never links)" if kind == SYMLINK else "not a folder") from None
        raise


def read_file(name: str, dir_fd: int, shown: str, limit: int) -> bytes:
    """The bytes of regular file ``name`` in ``dir_fd`` (at most ``limit``); FileNotFoundError if absent."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused(SYMLINK, shown, "a symlink (the store's files are never links)") from None
        if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket or a device without a reader
            raise Refused(SPECIAL, shown, "not a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(SPECIAL, shown, f"not a regular file ({_type_name(info.st_mode)})")
        _refuse_hard_link(info, shown)
        if info.st_size > limit:
            raise Refused(TOO_LARGE, shown, f"{info.st_size} bytes, more than the {limit} allowed")
        return _read_bounded(fd, info.st_size, limit, shown)
    finally:
        os.close(fd)


def _refuse_hard_link(info: os.stat_result, shown: str) -> None:
    if info.st_nlink > 1:
        raise Refused(HARD_LINK, shown, f"the file has {info.st_nlink} names (a hard link): another name, maybe outside "
                                        "the store, can rewrite it; keep copies of a store, not links (cp -a, rsync -a)")


def _read_bounded(fd: int, size: int, limit: int, shown: str) -> bytes:
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts, total = [data], len(data)  # the file grew while we read it: keep reading, bounded
    while chunk := os.read(fd, min(MiB, limit + 1 - total)):
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise Refused(TOO_LARGE, shown, f"grew past the {limit} bytes allowed while being read")
    return b"".join(parts)


def _type_name(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(name: str, dir_fd: int, shown: str) -> int:
    """A descriptor of regular file ``name`` (for streaming reads); FileNotFoundError if absent; Refused otherwise."""
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused(SYMLINK, shown, "a symlink (the store's files are never links)") from None
        if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):
            raise Refused(SPECIAL, shown, "not a regular file") from None
        raise
    info = os.fstat(fd)
    try:
        if not stat.S_ISREG(info.st_mode):
            raise Refused(SPECIAL, shown, f"not a regular file ({_type_name(info.st_mode)})")
        _refuse_hard_link(info, shown)
    except Refused:
        os.close(fd)
        raise
    os.set_blocking(fd, True)
    return fd


def iter_lines(fd: int, shown: str, max_line_bytes: int) -> Iterator[bytes]:
    """Each line of the file (without its newline; the last one may lack it), refusing one longer than the cap.

    Reads at most ``max_line_bytes + 1`` bytes of an over-long line before refusing it: memory stays bounded.
    """
    with os.fdopen(fd, "rb", buffering=MiB, closefd=True) as fh:
        number = 0
        while True:
            line = fh.readline(max_line_bytes + 2)
            if not line:
                return
            number += 1
            body = line[:-1] if line.endswith(b"\n") else line
            if len(body) > max_line_bytes:
                raise Refused(LONG_LINE, f"{shown} line {number}", f"longer than the {max_line_bytes} bytes allowed per line")
            yield line


class StoreReader:
    """Reads below one store root; every path is relative to it and opened without following links."""

    def __init__(self, root: str | os.PathLike, limits: Limits | None = None) -> None:
        self.root = os.fspath(root)
        self.limits = limits or Limits()
        self.fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root itself: the auditor's choice

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "StoreReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _parts(relative: str) -> list[str]:
        parts = relative.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"{relative!r}: not a path below the store (empty, '.' or '..' component)")
        return parts

    def folder(self, relative: str) -> int:
        """A descriptor of a folder below the root (caller closes it)."""
        self._parts(relative)
        fd, opened = self.fd, []
        try:
            shown = ""
            for part in relative.split("/"):
                shown = f"{shown}/{part}" if shown else part
                fd = open_dir(part, fd, shown)
                opened.append(fd)
        except BaseException:
            for f in opened:
                os.close(f)
            raise
        for f in opened[:-1]:
            os.close(f)
        return fd

    def read(self, relative: str) -> bytes:
        """The bytes of a regular file below the root, bounded by ``max_file_bytes``."""
        self._parts(relative)
        folder, _, name = relative.rpartition("/")
        if not folder:
            return read_file(name, self.fd, relative, self.limits.max_file_bytes)
        fd = self.folder(folder)
        try:
            return read_file(name, fd, relative, self.limits.max_file_bytes)
        finally:
            os.close(fd)

    def lines(self, relative: str) -> Iterator[bytes]:
        """The lines of a file directly in the root (the ledger), streamed, each bounded by ``max_line_bytes``."""
        return iter_lines(open_regular(relative, self.fd, relative), relative, self.limits.max_line_bytes)

    def listdir(self, relative: str) -> list[str]:
        fd = self.folder(relative)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)
