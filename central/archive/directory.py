"""The default archive store: a directory; object keys are relative paths below it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from central.archive.errors import ArchiveError


class DirectoryArchiveStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in Path(key).parts:
            raise ArchiveError(f"bad object key {key!r}")
        return self.root / key

    def _atomic(self, key: str, write: str | bytes) -> None:
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(write, bytes):
                tmp.write_bytes(write)
            else:
                shutil.copyfile(write, tmp)
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ArchiveError(f"writing {key} failed: {exc.strerror}") from None

    def put_file(self, key: str, path: Path) -> None:
        self._atomic(key, str(path))

    def put(self, key: str, data: bytes) -> None:
        self._atomic(key, data)

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except OSError as exc:
            raise ArchiveError(f"reading {key} failed: {exc.strerror}") from None

    def keys(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        out = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)
