"""GeoPackage container (OGC 12-128r18) over plain `sqlite3` + `shapely`: geometry blobs, feature and
attribute tables, the spatial reference systems, and the WGS84 -> UTM projection nuPlan maps need.

No GDAL/pyogrio/pyproj: a GeoPackage is an SQLite file whose geometry cells are a small 'GP' header
followed by standard WKB, and nuPlan only ever projects EPSG:4326 to one UTM zone.
"""

from __future__ import annotations

import math
import os
import sqlite3
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import shapely

GPKG_APPLICATION_ID = 0x47504B47
"""PRAGMA application_id of a GeoPackage ('GPKG')."""
GPKG_USER_VERSION = 10300
"""PRAGMA user_version: GeoPackage 1.3.0."""
WGS84_EPSG = 4326
_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}
"""GeoPackage header flag bits 1-3 -> number of envelope doubles after srs_id."""
_FIXED_TIMESTAMP = "2000-01-01T00:00:00.000Z"
"""`gpkg_contents.last_change` we write: fixed, so an export is byte-for-byte reproducible."""


# --------------------------------------------------------------------------------------------
# Geometry blobs
# --------------------------------------------------------------------------------------------

def encode_geometry(geometry, srs_id: int) -> bytes:
    """GeoPackage blob of a shapely geometry: 'GP', version 0, little-endian header with an xy envelope
    (min_x, max_x, min_y, max_y), srs_id, then 2-D little-endian WKB (float64, so coordinates are exact)."""
    wkb = shapely.to_wkb(geometry, byte_order=1, output_dimension=2)
    if shapely.is_empty(geometry):
        return b"GP" + bytes([0, 0b10001]) + struct.pack("<i", srs_id) + wkb
    min_x, min_y, max_x, max_y = shapely.bounds(geometry)
    return b"GP" + bytes([0, 0b00011]) + struct.pack("<i4d", srs_id, min_x, max_x, min_y, max_y) + wkb


def decode_geometries(blobs: Sequence[bytes | None], where: str) -> np.ndarray:
    """Shapely geometries (object array, N) of GeoPackage blobs; None for NULL or empty cells.

    `where` names the table in errors (e.g. 'map.gpkg: layer lanes_polygons').
    """
    wkbs: list[bytes | None] = []
    for i, blob in enumerate(blobs):
        if blob is None:
            wkbs.append(None)
            continue
        blob = bytes(blob)
        if len(blob) < 8 or blob[:2] != b"GP":
            raise ValueError(f"{where}: row {i}: geometry is not a GeoPackage blob (no 'GP' magic)")
        flags = blob[3]
        envelope = (flags >> 1) & 0b111
        if envelope not in _ENVELOPE_DOUBLES:
            raise ValueError(f"{where}: row {i}: invalid envelope indicator {envelope} in the geometry header")
        if (flags >> 5) & 1:
            raise ValueError(f"{where}: row {i}: extended GeoPackage geometry blobs are not supported")
        is_empty = bool((flags >> 4) & 1)
        wkbs.append(None if is_empty else blob[8 + 8 * _ENVELOPE_DOUBLES[envelope]:])
    try:
        return shapely.from_wkb(np.array(wkbs, dtype=object))
    except shapely.errors.GEOSException as err:
        raise ValueError(f"{where}: invalid WKB geometry: {err}") from None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def open_geopackage(path: str | os.PathLike) -> sqlite3.Connection:
    """Read-only connection to an existing GeoPackage; a missing or non-SQLite file is a ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such map file")
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as err:
        conn.close()
        raise ValueError(f"{path}: not a GeoPackage (SQLite) file: {err}") from None
    return conn


def table_names(conn: sqlite3.Connection) -> set[str]:
    """Names of every table in the file."""
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def srs_epsg(conn: sqlite3.Connection, srs_id: int) -> int | None:
    """EPSG code of a `gpkg_spatial_ref_sys` entry, or None when it is not an EPSG system."""
    row = conn.execute("SELECT organization, organization_coordsys_id FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
                       (srs_id,)).fetchone()
    if row is None or str(row[0]).upper() != "EPSG":
        return None
    return int(row[1])


@dataclass(frozen=True)
class Features:
    """Rows of one feature table, in primary-key order."""

    fids: np.ndarray = field(metadata={"dims": "N"})
    """int64 primary keys."""
    geometry: np.ndarray = field(metadata={"dims": "N"})
    """Shapely geometries (object); None for NULL."""
    srs_id: int
    """`gpkg_geometry_columns.srs_id` of the table."""
    columns: dict[str, list[Any]]
    """Requested attribute columns, raw sqlite values (None for NULL)."""

    def __len__(self) -> int:
        return len(self.fids)


def read_features(conn: sqlite3.Connection, table: str, columns: Sequence[str], where: str) -> Features:
    """Every row of feature table `table`: primary key, geometry and the named columns (all must exist)."""
    info = conn.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (table,)).fetchone()
    if info is None:
        raise ValueError(f"{where}: layer {table!r} is not registered in gpkg_geometry_columns")
    geom_column, srs_id = info
    schema = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    names = [row[1] for row in schema]
    pk = [row[1] for row in schema if row[5] == 1]
    if len(pk) != 1:
        raise ValueError(f"{where}: layer {table!r} has no single integer primary key (fid)")
    for name in (geom_column, *columns):
        if name not in names:
            raise ValueError(f"{where}: layer {table!r} has no column {name!r} (columns: {', '.join(names)})")
    selected = ", ".join(f'"{c}"' for c in (pk[0], geom_column, *columns))
    rows = conn.execute(f'SELECT {selected} FROM "{table}" ORDER BY "{pk[0]}"').fetchall()
    cells = list(zip(*rows)) if rows else [()] * (2 + len(columns))
    return Features(
        fids=np.array(cells[0], dtype=np.int64),
        geometry=decode_geometries(cells[1], f"{where}: layer {table!r}"),
        srs_id=int(srs_id),
        columns={name: list(cells[2 + i]) for i, name in enumerate(columns)},
    )


def read_attributes(conn: sqlite3.Connection, table: str, columns: Sequence[str], where: str) -> dict[str, list[Any]]:
    """Named columns of a plain (attributes) table, in rowid order."""
    names = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")').fetchall()]
    for name in columns:
        if name not in names:
            raise ValueError(f"{where}: table {table!r} has no column {name!r} (columns: {', '.join(names)})")
    selected = ", ".join(f'"{c}"' for c in columns)
    rows = conn.execute(f'SELECT {selected} FROM "{table}" ORDER BY rowid').fetchall()
    cells = list(zip(*rows)) if rows else [()] * len(columns)
    return {name: list(cells[i]) for i, name in enumerate(columns)}


# --------------------------------------------------------------------------------------------
# Coordinate systems: EPSG codes and WGS84 -> UTM (Krueger series)
# --------------------------------------------------------------------------------------------

def parse_epsg(text: str, where: str) -> int:
    """'epsg:32611' / 'EPSG:32611' -> 32611 (how nuPlan's `meta.projectedCoordSystem` names the CRS)."""
    head, _, code = str(text).strip().partition(":")
    if head.upper() != "EPSG" or not code.isdigit():
        raise ValueError(f"{where}={text!r}: expected an 'epsg:<code>' coordinate system")
    return int(code)


def utm_zone(epsg: int) -> tuple[int, bool] | None:
    """(zone, is_north) of a WGS 84 / UTM EPSG code (326zz north, 327zz south); None otherwise."""
    zone = epsg % 100
    if epsg // 100 in (326, 327) and 1 <= zone <= 60:
        return zone, epsg // 100 == 326
    return None


_WGS84_A = 6378137.0
"""WGS84 semi-major axis [m]."""
_WGS84_F = 1 / 298.257223563
_UTM_K0 = 0.9996
_UTM_FALSE_EASTING = 500000.0
_UTM_FALSE_NORTHING_SOUTH = 10000000.0


def _krueger_coefficients() -> tuple[float, np.ndarray]:
    """Rectifying radius A and alpha_1..alpha_6 of the 6th-order Krueger series (Karney 2011, eq. 35),
    the algorithm PROJ uses for `+proj=utm` (agrees with it to nanometres within a zone)."""
    n = _WGS84_F / (2 - _WGS84_F)
    rect = _WGS84_A / (1 + n) * (1 + n**2 / 4 + n**4 / 64 + n**6 / 256)
    alpha = np.array([
        n / 2 - 2 * n**2 / 3 + 5 * n**3 / 16 + 41 * n**4 / 180 - 127 * n**5 / 288 + 7891 * n**6 / 37800,
        13 * n**2 / 48 - 3 * n**3 / 5 + 557 * n**4 / 1440 + 281 * n**5 / 630 - 1983433 * n**6 / 1935360,
        61 * n**3 / 240 - 103 * n**4 / 140 + 15061 * n**5 / 26880 + 167603 * n**6 / 181440,
        49561 * n**4 / 161280 - 179 * n**5 / 168 + 6601661 * n**6 / 7257600,
        34729 * n**5 / 80640 - 3418889 * n**6 / 1995840,
        212378941 * n**6 / 319334400,
    ])
    return rect, alpha


def lonlat_to_utm(lon_deg: np.ndarray, lat_deg: np.ndarray, zone: int, is_north: bool) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitude/latitude [deg] -> UTM easting/northing [m] of `zone` (any shape, numpy)."""
    rect, alpha = _krueger_coefficients()
    ecc = math.sqrt(_WGS84_F * (2 - _WGS84_F))
    phi = np.radians(np.asarray(lat_deg, np.float64))
    lam = np.radians(np.asarray(lon_deg, np.float64) - (6.0 * zone - 183.0))
    sin_phi = np.sin(phi)
    tau = np.sinh(np.arctanh(sin_phi) - ecc * np.arctanh(ecc * sin_phi))  # tan of the conformal latitude
    xi0 = np.arctan2(tau, np.cos(lam))
    eta0 = np.arctanh(np.sin(lam) / np.sqrt(1 + tau * tau))
    j = np.arange(1, 7).reshape((6,) + (1,) * xi0.ndim)
    xi = xi0 + (alpha.reshape(j.shape) * np.sin(2 * j * xi0) * np.cosh(2 * j * eta0)).sum(axis=0)
    eta = eta0 + (alpha.reshape(j.shape) * np.cos(2 * j * xi0) * np.sinh(2 * j * eta0)).sum(axis=0)
    easting = _UTM_FALSE_EASTING + _UTM_K0 * rect * eta
    northing = _UTM_K0 * rect * xi + (0.0 if is_north else _UTM_FALSE_NORTHING_SOUTH)
    return easting, northing


def utm_wkt(epsg: int) -> str:
    """OGC WKT of a WGS 84 / UTM EPSG code (for `gpkg_spatial_ref_sys.definition`)."""
    zone_info = utm_zone(epsg)
    if zone_info is None:
        raise ValueError(f"epsg={epsg}: not a WGS 84 / UTM code (32601-32660, 32701-32760)")
    zone, is_north = zone_info
    return (
        f'PROJCS["WGS 84 / UTM zone {zone}{"N" if is_north else "S"}",GEOGCS["WGS 84",DATUM["WGS_1984",'
        'SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
        f'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
        f'PARAMETER["central_meridian",{6 * zone - 183}],PARAMETER["scale_factor",{_UTM_K0}],'
        f'PARAMETER["false_easting",{int(_UTM_FALSE_EASTING)}],'
        f'PARAMETER["false_northing",{0 if is_north else int(_UTM_FALSE_NORTHING_SOUTH)}],'
        f'UNIT["metre",1],AUTHORITY["EPSG","{epsg}"]]'
    )


_WGS84_WKT = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],'
              'UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]')


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def create_geopackage(path: str | os.PathLike, projected_epsg: int) -> sqlite3.Connection:
    """New GeoPackage (an existing file is replaced) with the required metadata tables and the spatial
    reference systems -1, 0, EPSG:4326 and the UTM system `projected_epsg`."""
    path = Path(path)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
    conn.executescript("""
        CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY,
            organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL,
            description TEXT);
        CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL,
            identifier TEXT UNIQUE, description TEXT DEFAULT '', last_change DATETIME NOT NULL,
            min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
            CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
        CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL,
            geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
            CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
            CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
            CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
    """)
    conn.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", [
        ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
        ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system"),
        ("WGS 84 geodetic", WGS84_EPSG, "EPSG", WGS84_EPSG, _WGS84_WKT, "longitude/latitude on the WGS 84 ellipsoid"),
        (f"WGS 84 / UTM EPSG:{projected_epsg}", projected_epsg, "EPSG", projected_epsg, utm_wkt(projected_epsg), None),
    ])
    return conn


def add_feature_table(conn: sqlite3.Connection, table: str, geometry_type: str, srs_id: int,
                      columns: Sequence[tuple[str, str]], rows: Sequence[tuple], geometries: Sequence) -> None:
    """Feature table `fid INTEGER PRIMARY KEY, geom <geometry_type>, columns...`; each row is
    (fid, *column values) and pairs with one shapely geometry."""
    if len(rows) != len(geometries):
        raise ValueError(f"table {table!r}: {len(rows)} rows but {len(geometries)} geometries")
    ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    conn.execute(f'CREATE TABLE "{table}" ("fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
                 f'"geom" {geometry_type}{", " + ddl if ddl else ""})')
    blobs = [encode_geometry(g, srs_id) for g in geometries]
    marks = ", ".join("?" * (len(columns) + 2))
    names = ", ".join(['"fid"', '"geom"', *(f'"{name}"' for name, _ in columns)])
    conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})',
                     [(row[0], blob, *row[1:]) for row, blob in zip(rows, blobs)])
    bounds = shapely.total_bounds(np.array(list(geometries), dtype=object)) if geometries else [None] * 4
    bounds = [None if b is None or not math.isfinite(b) else float(b) for b in bounds]
    conn.execute("INSERT INTO gpkg_contents VALUES (?, 'features', ?, '', ?, ?, ?, ?, ?, ?)",
                 (table, table, _FIXED_TIMESTAMP, *bounds, srs_id))
    conn.execute("INSERT INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)", (table, geometry_type, srs_id))


def add_attribute_table(conn: sqlite3.Connection, table: str, columns: Sequence[tuple[str, str]],
                        rows: Sequence[tuple]) -> None:
    """Non-spatial (GeoPackage 'attributes') table with an integer `id` key and the given columns."""
    ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    conn.execute(f'CREATE TABLE "{table}" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, {ddl})')
    names = ", ".join(f'"{name}"' for name, _ in columns)
    conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})', rows)
    conn.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier, last_change) "
                 "VALUES (?, 'attributes', ?, ?)", (table, table, _FIXED_TIMESTAMP))
