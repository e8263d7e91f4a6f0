"""envs.backends.gpkg: geometry blobs, tables, spatial reference systems, WGS84 -> UTM."""

import sqlite3
import struct

import numpy as np
import pytest
import shapely
import shapely.wkb

from envs.backends.gpkg import (
    GPKG_APPLICATION_ID, add_attribute_table, add_feature_table, create_geopackage, decode_geometries,
    encode_geometry, lonlat_to_utm, open_geopackage, parse_epsg, read_attributes, read_features, srs_epsg,
    table_names, utm_wkt, utm_zone,
)


# --- WGS84 -> UTM ------------------------------------------------------------------------------

def test_geographiclib_documented_example():
    # GeoConvert(1) man page: "33.3 44.4" (lat lon) is "38n 444140.54 3684706.36".
    easting, northing = lonlat_to_utm(np.array(44.4), np.array(33.3), 38, True)
    assert easting == pytest.approx(444140.54, abs=0.01) and northing == pytest.approx(3684706.36, abs=0.01)


def test_central_meridian_maps_to_false_easting_and_scaled_meridian_arc():
    # On the central meridian of zone 11 (-117 deg) easting is 500 km; at 45 deg N the northing is
    # k0 * the meridian arc length from the equator, 0.9996 * 4 984 944.378 m (WGS84).
    easting, northing = lonlat_to_utm(np.array([-117.0]), np.array([45.0]), 11, True)
    assert easting[0] == pytest.approx(500000.0, abs=1e-6)
    assert northing[0] == pytest.approx(0.9996 * 4984944.378, abs=1e-3)


@pytest.mark.parametrize("lon, lat, zone, north, expected", [
    # Reference values from PROJ 9 (pyproj 3.7.2, EPSG:4326 -> EPSG:326zz/327zz, always_xy).
    (-115.1728, 36.1147, 11, True, (664450.9750620188, 3998216.3353241864)),   # Las Vegas strip
    (-115.17, 36.12, 11, True, (664691.9331399775, 3998809.0291747046)),
    (-119.9, 10.0, 11, True, (182044.57230579748, 1106810.6571218483)),        # 2.9 deg off the meridian
    (103.79, -1.3, 48, False, (365381.6547774541, 9856278.439519918)),          # southern hemisphere
    (-77.05014581, 38.88944258, 18, True, (322190.22327820305, 4306505.704197264)),
])
def test_matches_proj_to_a_micrometre(lon, lat, zone, north, expected):
    easting, northing = lonlat_to_utm(np.array(lon), np.array(lat), zone, north)
    assert abs(easting - expected[0]) < 1e-6 and abs(northing - expected[1]) < 1e-6


def test_vectorised_over_any_shape():
    lon = np.array([[-115.17, -115.169], [-115.1728, -117.0]])
    lat = np.array([[36.12, 36.121], [36.1147, 45.0]])
    easting, northing = lonlat_to_utm(lon, lat, 11, True)
    assert easting.shape == (2, 2) and easting[1, 0] == pytest.approx(664450.9750620188, abs=1e-6)
    assert northing[0, 1] == pytest.approx(3998921.6590834516, abs=1e-6)


@pytest.mark.parametrize("text, code", [("epsg:32611", 32611), ("EPSG:4326", 4326), (" epsg:32748 ", 32748)])
def test_parse_epsg(text, code):
    assert parse_epsg(text, "meta") == code


@pytest.mark.parametrize("text", ["+proj=utm +zone=11", "epsg:", "utm:32611", ""])
def test_parse_epsg_rejects_other_notations(text):
    with pytest.raises(ValueError, match="meta="):
        parse_epsg(text, "meta")


def test_utm_zone_and_wkt():
    assert utm_zone(32611) == (11, True) and utm_zone(32748) == (48, False)
    assert utm_zone(4326) is None and utm_zone(32661) is None and utm_zone(32600) is None
    wkt = utm_wkt(32619)
    assert 'PARAMETER["central_meridian",-69]' in wkt and 'AUTHORITY["EPSG","32619"]' in wkt
    assert 'PARAMETER["false_northing",10000000]' in utm_wkt(32748)
    with pytest.raises(ValueError, match="epsg=4326"):
        utm_wkt(4326)


# --- geometry blobs ----------------------------------------------------------------------------

def test_blob_header_layout_and_exact_coordinates():
    polygon = shapely.Polygon([(0.1, 0.2), (3.3, 0.2), (3.3, 4.7)])
    blob = encode_geometry(polygon, 32611)
    assert blob[:2] == b"GP" and blob[2] == 0 and blob[3] == 0b11          # little endian, xy envelope
    srs_id, min_x, max_x, min_y, max_y = struct.unpack("<i4d", blob[4:40])
    assert (srs_id, min_x, max_x, min_y, max_y) == (32611, 0.1, 3.3, 0.2, 4.7)
    assert shapely.wkb.loads(blob[40:]).equals_exact(polygon, 0.0)
    (back,) = decode_geometries([blob], "t")
    assert np.array_equal(shapely.get_coordinates(back), shapely.get_coordinates(polygon))


def test_decodes_big_endian_header_without_envelope_and_nulls():
    line = shapely.LineString([(1.0, 2.0), (3.0, 5.0)])
    big_endian = b"GP" + bytes([0, 0b000]) + struct.pack(">i", 4326) + shapely.to_wkb(line, byte_order=0)
    empty = encode_geometry(shapely.Polygon(), 4326)
    assert empty[3] & 0b10000                                                # the empty flag is set
    decoded = decode_geometries([big_endian, None, empty], "t")
    assert decoded[0].equals_exact(line, 0.0) and decoded[1] is None and decoded[2] is None


def test_rejects_non_geopackage_blobs():
    with pytest.raises(ValueError, match="layer x: row 1: .*no 'GP' magic"):
        decode_geometries([encode_geometry(shapely.Point(0, 0), 0), b"\x01\x01\x00\x00\x00"], "layer x")
    bad_envelope = b"GP" + bytes([0, 0b1011]) + struct.pack("<i", 0) + shapely.to_wkb(shapely.Point(0, 0))
    with pytest.raises(ValueError, match="invalid envelope indicator 5"):
        decode_geometries([bad_envelope], "t")


# --- files -------------------------------------------------------------------------------------

def test_written_file_is_a_geopackage_and_reads_back(tmp_path):
    path = tmp_path / "m.gpkg"
    conn = create_geopackage(path, 32611)
    lines = [shapely.LineString([(0, 0), (1, 1)]), shapely.LineString([(5, 5), (6, 8), (9, 9)])]
    add_feature_table(conn, "paths", "LINESTRING", 32611, [("kind", "INTEGER"), ("name", "TEXT")],
                      [(7, 1, "a"), (3, None, "b")], lines)
    add_attribute_table(conn, "meta", [("key", "TEXT"), ("value", "TEXT")], [("projectedCoordSystem", "epsg:32611")])
    conn.commit()
    conn.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA application_id").fetchone()[0] == GPKG_APPLICATION_ID
    assert raw.execute("SELECT data_type, srs_id, min_x, max_y FROM gpkg_contents WHERE table_name = 'paths'"
                       ).fetchone() == ("features", 32611, 0.0, 9.0)
    assert raw.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'meta'").fetchone() == ("attributes",)
    assert raw.execute("SELECT geometry_type_name FROM gpkg_geometry_columns").fetchall() == [("LINESTRING",)]
    raw.close()

    conn = open_geopackage(path)
    assert {"paths", "meta", "gpkg_contents", "gpkg_spatial_ref_sys"} <= table_names(conn)
    assert srs_epsg(conn, 32611) == 32611 and srs_epsg(conn, 4326) == 4326 and srs_epsg(conn, -1) is None
    features = read_features(conn, "paths", ("kind", "name"), "m.gpkg")
    assert features.fids.tolist() == [3, 7] and features.srs_id == 32611      # primary-key order
    assert features.columns == {"kind": [None, 1], "name": ["b", "a"]}
    assert features.geometry[0].equals_exact(lines[1], 0.0)
    assert read_attributes(conn, "meta", ("key", "value"), "m.gpkg") == {
        "key": ["projectedCoordSystem"], "value": ["epsg:32611"]}
    with pytest.raises(ValueError, match="m.gpkg: layer 'paths' has no column 'speed'"):
        read_features(conn, "paths", ("speed",), "m.gpkg")
    with pytest.raises(ValueError, match="layer 'meta' is not registered in gpkg_geometry_columns"):
        read_features(conn, "meta", (), "m.gpkg")
    conn.close()


def test_open_rejects_missing_and_non_sqlite_files(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.gpkg: no such map file"):
        open_geopackage(tmp_path / "nope.gpkg")
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match=r"junk\.gpkg: not a GeoPackage \(SQLite\) file"):
        open_geopackage(junk)
