"""Edge-list files of a social graph, read with errors that name the file and the line.

Format: one tie per line, ``source,target[,weight]``, separated by commas or whitespace
(tabs included); blank lines and lines starting with ``#`` are skipped. The first line
is a header when neither of its first two fields is a user id of the dataset and they are
not both whole numbers (so ``9999,8888`` is a bad row, not a header). A directed tie
means *source follows target*.

Decisions (docs/social.md):

* a tie stated twice is one tie (undirected: ``a,b`` and ``b,a`` too, as files listing
  both directions do); it keeps the largest weight given, and the merge is noted;
* a self-loop is an error (a user is not their own friend);
* a tie to a dataset user outside the population is left out and counted in the notes
  (an edge list of the whole dataset serves a sampled population); an id the dataset
  does not have is an error;
* ``weighted: false`` ignores a third column; ``weighted: true`` requires one, a
  positive finite number.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.social_model import GraphError

__all__ = ["EdgeList", "read_edge_list"]


@dataclass(frozen=True)
class EdgeList:
    """The ties of a file over population nodes: ``src[k] -> dst[k]`` with ``weight[k]``
    as written (1.0 when unweighted), each tie once (undirected: ``src < dst``)."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    notes: tuple[str, ...]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    # Bytes, decoded line by line, so a decoding error names its line.
    try:
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise GraphError(f"{path}:{lineno}: not UTF-8 text ({e.reason})") from None
                line = text.lstrip("\ufeff").strip() if lineno == 1 else text.strip()
                if line and not line.startswith("#"):
                    yield lineno, line
    except OSError as e:
        raise GraphError(f"{path}: cannot read the edge list ({e.strerror or e})") from None


def _split(line: str) -> list[str]:
    return [p.strip() for p in line.split(",")] if "," in line else line.split()


def read_edge_list(path: str | Path, node_of_id: Mapping[str, int | None], directed: bool,
                   weighted: bool) -> EdgeList:
    """Read an edge list whose ids are the keys of ``node_of_id``.

    Args:
        path: The file.
        node_of_id: Every user id of the dataset -> its node, or None for a user outside
            the population (ties to them are left out).
        directed: Keep ``a,b`` and ``b,a`` apart (else they are one tie).
        weighted: Read the third column as the tie's weight.

    Raises:
        GraphError: The file is missing or unreadable, or a row is malformed, names an
            unknown user or ties a user to themself (message: ``FILE:LINE: ...``).
    """
    p = Path(path)
    if not p.is_file():
        raise GraphError(f"{p}: no such edge-list file")
    ties: dict[tuple[int, int], float] = {}
    outside = 0
    merged: list[int] = []
    first = True
    for lineno, line in _lines(p):
        parts = _split(line)
        if first:
            first = False
            if (len(parts) >= 2 and not any(x in node_of_id for x in parts[:2])
                    and not all(x.lstrip("-").isdigit() for x in parts[:2])):
                continue  # a header
        want = 3 if weighted else 2
        if not want <= len(parts) <= 3 or not all(parts):
            shape = "source,target,weight" if weighted else "source,target[,weight]"
            raise GraphError(f"{p}:{lineno}: expected {shape}, found {line!r}")
        nodes = []
        for field, uid in zip(("source", "target"), parts[:2], strict=True):
            if uid not in node_of_id:
                raise GraphError(f"{p}:{lineno}: {field}: unknown user id {uid!r} "
                                 "(not a user of the dataset)")
            nodes.append(node_of_id[uid])
        if parts[0] == parts[1]:
            raise GraphError(f"{p}:{lineno}: self-loop: user {parts[0]} is tied to themself")
        w = 1.0
        if weighted:
            try:
                w = float(parts[2])
            except ValueError:
                w = math.nan
            if not (math.isfinite(w) and w > 0):
                raise GraphError(f"{p}:{lineno}: weight: expected a positive number, "
                                 f"found {parts[2]!r}")
        a, b = nodes
        if a is None or b is None:
            outside += 1
            continue
        key = (a, b) if directed or a < b else (b, a)
        if key in ties:
            merged.append(lineno)
            w = max(w, ties[key])
        ties[key] = w
    if not ties:
        raise GraphError(f"{p}: no ties among the population's users"
                         + (f" ({outside} ties to users outside it left out)" if outside else ""))
    notes = []
    if merged:
        notes.append(f"{p.name}: {len(merged)} repeated ties merged (first at line {merged[0]})")
    if outside:
        notes.append(f"{p.name}: {outside} ties to users outside the population left out")
    keys = np.array(list(ties), dtype=np.int64).reshape(-1, 2)
    return EdgeList(src=keys[:, 0], dst=keys[:, 1],
                    weight=np.fromiter(ties.values(), dtype=np.float64, count=len(ties)),
                    notes=tuple(notes))
