"""Fetch public datasets on explicit request (the only network use besides LLM endpoints)."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

__all__ = ["DATASETS", "DownloadError", "download"]

DATASETS = {"ml-100k": "https://files.grouplens.org/datasets/movielens/ml-100k.zip"}


class DownloadError(RuntimeError):
    """Download failed; the message is one line."""


def download(name: str, to: str | Path, url: str | None = None, timeout: float = 30.0) -> Path:
    """Download and unpack dataset ``name`` into ``to``; return the data folder."""
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    src = url or DATASETS[name]
    dest = Path(to)
    target = dest / name
    if target.exists() and any(target.iterdir()):
        raise DownloadError(f"{target}: already exists and is not empty; nothing downloaded")
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / f"{name}.zip.part"
    try:
        with urllib.request.urlopen(src, timeout=timeout) as resp, part.open("wb") as f:
            shutil.copyfileobj(resp, f)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DownloadError(
            f"cannot download {src}: {reason} (offline? copy a GroupLens ml-100k folder or "
            f"RecBole atomic files into {dest} by hand)"
        ) from None
    try:
        with zipfile.ZipFile(part) as z:
            names = z.namelist()
            if not any(n.endswith("u.data") for n in names):
                raise DownloadError(f"{src}: the archive has no u.data; not MovieLens 100K")
            for n in names:
                # Refuse path traversal in member names.
                if n.startswith("/") or ".." in Path(n).parts:
                    raise DownloadError(f"{src}: unsafe path in archive: {n}")
            z.extractall(dest)
    except zipfile.BadZipFile:
        raise DownloadError(f"{src}: not a zip archive") from None
    finally:
        part.unlink(missing_ok=True)
    return target
