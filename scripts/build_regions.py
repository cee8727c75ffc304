"""Build the packaged regions table from the census prefecture file.

Usage: python scripts/build_regions.py ../shared/fixtures/regions/census_city_2010-2020_v1.csv

Writes ``alerts/data/regions.csv.gz``: one row per prefecture-level unit with
adcode, name, province, province code, 2020 population, a representative
point guaranteed to lie inside the boundary, and the boundary as WKT
(lon lat order), simplified to about 500 m and rounded to 1e-4 degrees so
the package stays small. Source and licence: ``alerts/data/README.md``.
"""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

import shapely
from shapely import wkt

SIMPLIFY_DEG = 0.005
OUT = Path(__file__).resolve().parent.parent / "alerts" / "data" / "regions.csv.gz"
FIELDS = [
    "adcode",
    "name",
    "province",
    "province_code",
    "population_2020",
    "rep_lon",
    "rep_lat",
    "boundary",
]


def main(src: str) -> None:
    csv.field_size_limit(10**9)
    with open(src, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with gzip.open(OUT, "wt", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            geom = shapely.simplify(wkt.loads(row["coord"]), SIMPLIFY_DEG, preserve_topology=True)
            geom = shapely.set_precision(geom, 1e-4)
            if not geom.is_valid:
                geom = shapely.make_valid(geom)
            point = geom.representative_point()
            writer.writerow(
                {
                    "adcode": row["city_code"],
                    "name": row["city"],
                    "province": row["province"],
                    "province_code": row["province_code"],
                    "population_2020": row["popu_2020"],
                    "rep_lon": round(point.x, 4),
                    "rep_lat": round(point.y, 4),
                    "boundary": shapely.to_wkt(geom, rounding_precision=4, trim=True),
                }
            )
    print(f"wrote {len(rows)} regions to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
