"""The regions table: prefecture-level units with boundaries and population.

Distances are computed on an azimuthal-like local projection centred on the
point asked about (equirectangular scaled at the point's latitude), which is
accurate to well under 1 % within the few hundred kilometres that warnings
care about, and vectorized across every region by shapely.
"""

from __future__ import annotations

import csv
import gzip
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

__all__ = ["EARTH_RADIUS_KM", "Region", "Regions", "load_regions"]

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Region:
    adcode: str
    name: str
    province: str
    population: int | None
    distance_km: float

    @property
    def full_name(self) -> str:
        """Province and prefecture, without repeating a municipality's name."""
        return self.name if self.name == self.province else f"{self.province}{self.name}"


class Regions:
    """A table of regions with shapely boundaries, queried by point."""

    def __init__(self, frame: pd.DataFrame, geoms: np.ndarray) -> None:
        self.frame = frame.reset_index(drop=True)
        self.geoms = geoms
        self._tree = shapely.STRtree(geoms)

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_csv(cls, path: str | Path) -> Regions:
        csv.field_size_limit(10**9)
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
            frame = pd.DataFrame(list(csv.DictReader(fh)))
        missing = {"adcode", "name", "province", "population_2020", "boundary"} - set(frame.columns)
        if missing:
            raise ValueError(f"regions file {path}: missing columns {sorted(missing)}")
        geoms = shapely.from_wkt(frame.pop("boundary").to_numpy())
        # Some county-level cities under the Xinjiang Corps have no census figure: keep NA.
        frame["population_2020"] = pd.to_numeric(frame["population_2020"].replace("", None)).astype(
            "Int64"
        )
        return cls(frame, geoms)

    def distances_km(self, lon: float, lat: float) -> np.ndarray:
        """Distance from the point to each region (0 inside), in km."""
        scale = math.cos(math.radians(lat))

        def project(coords: np.ndarray) -> np.ndarray:
            dlon = (coords[:, 0] - lon + 180.0) % 360.0 - 180.0
            x = np.radians(dlon) * scale * EARTH_RADIUS_KM
            y = np.radians(coords[:, 1] - lat) * EARTH_RADIUS_KM
            return np.column_stack([x, y])

        projected = shapely.transform(self.geoms, project)
        return np.asarray(shapely.distance(projected, shapely.Point(0.0, 0.0)))

    def nearest(self, lon: float, lat: float) -> Region:
        """The region containing the point, or else the closest one."""
        dist = self.distances_km(lon, lat)
        i = int(np.argmin(dist))
        row = self.frame.iloc[i]
        return Region(
            adcode=str(row["adcode"]),
            name=str(row["name"]),
            province=str(row["province"]),
            population=None if pd.isna(row["population_2020"]) else int(row["population_2020"]),
            distance_km=float(dist[i]),
        )

    def contains(self, lon: float, lat: float) -> bool:
        hits = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        return len(hits) > 0


def packaged_regions_path() -> Path:
    return Path(str(resources.files("alerts") / "data" / "regions.csv.gz"))


@lru_cache(maxsize=4)
def load_regions(path: str | None = None) -> Regions:
    """Load (once per process) the configured or the packaged regions table."""
    return Regions.from_csv(path or packaged_regions_path())
