"""Writes csv_example.csv: a small made-up shop (not MovieLens), for scenarios/csv_example.yaml.

    python scenarios/data/make_csv_example.py

Sixty customers in three taste groups buy from eighty products in three lines; each
purchase is rated 1-5 (higher within the customer's own line) on a date in 2024. The
columns are named as a shop's export might name them, separated by semicolons, so the
scenario shows the column mapping and the delimiter sniffing.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "csv_example.csv"


def main() -> None:
    rng = np.random.default_rng(20240601)
    n_users, n_items = 60, 80
    user_line = rng.integers(0, 3, n_users)
    item_line = rng.integers(0, 3, n_items)
    popularity = rng.gamma(1.2, 1.0, n_items)
    rows = []
    for u in range(n_users):
        n = int(rng.integers(5, 12))
        affinity = np.where(item_line == user_line[u], 3.0, 0.6) * popularity
        items = rng.choice(n_items, size=n, replace=False, p=affinity / affinity.sum())
        start = date(2024, 1, 1) + timedelta(days=int(rng.integers(0, 120)))
        for k, i in enumerate(items):
            base = 4.2 if item_line[i] == user_line[u] else 2.6
            stars = int(np.clip(np.rint(base + rng.normal(0, 0.8)), 1, 5))
            day = start + timedelta(days=int(k * rng.integers(1, 9)))
            rows.append((f"c{u + 1:03d}", f"p{i + 1:03d}", stars, day.isoformat()))
    with OUT.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["customer_id", "product", "stars", "bought_on"])
        w.writerows(rows)
    print(f"{OUT}: {len(rows)} rows")


if __name__ == "__main__":
    main()
