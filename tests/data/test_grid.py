import numpy as np
import pytest

from geocontext.data.grid import LAT_RANGE, LON_RANGE, locate, normalise
from geocontext.synthetic.world import format_osgb


@pytest.mark.parametrize("ref, lat, lon", [
    ("NT2573", 55.9486, -3.1999),  # Edinburgh Castle, NT 251 735
    ("SV9010", 49.9145, -6.3140),  # Hugh Town, St Mary's, Isles of Scilly
    ("HU4741", 60.1546, -1.1494),  # Lerwick, Shetland
    ("O1534", 53.3498, -6.2603),  # Dublin GPO, on the Irish Grid
    ("J3374", 54.5966, -5.9301),  # Belfast City Hall, on the Irish Grid
])
def test_square_centres_land_on_known_places(ref, lat, lon):
    # Landmark coordinates (WGS84) inside each 1 km square: the centre is within about 0.01 degrees.
    loc = locate([ref])
    assert loc.latlon[0] == pytest.approx([lat, lon], abs=0.01)


def test_spellings_and_precision():
    loc = locate(["nt 2673", "NT2654073512", "NT265735"])
    assert np.allclose(loc.latlon, loc.latlon[0])  # finer references fall in the same 1 km square


def test_unknown_references_are_counted_not_zero():
    loc = locate(["", None, "XX1234", "NT12", "NT123", "ZZ", "I1234", "SX1234"])
    assert loc.known.tolist() == [False] * 7 + [True]
    assert loc.empty == 2 and loc.malformed_count == 5
    assert set(loc.malformed) == {"XX1234", "NT12", "NT123", "ZZ", "I1234"}
    assert np.isnan(loc.latlon[:7]).all()


def test_irish_grid_rows_are_marked():
    loc = locate(["O1534", "J3374", "NT2573", "", "I1234"])
    assert loc.irish.tolist() == [True, True, False, False, False]
    assert loc.summary()["irish"] == 2


def test_normalise_uses_the_published_bounds():
    out = normalise(np.array([[LAT_RANGE[0], LON_RANGE[0]], [LAT_RANGE[1], LON_RANGE[1]], [np.nan, np.nan]]))
    assert out[:2].tolist() == [[0, 0], [1, 1]] and np.isnan(out[2]).all()


def test_round_trip_with_the_reference_writer():
    rng = np.random.default_rng(0)
    east = rng.integers(0, 700_000, 500)
    north = rng.integers(0, 1_200_000, 500)
    refs = format_osgb(east, north)
    again = format_osgb(*np.round(_to_grid(locate(refs).latlon)).astype(np.int64).T)
    assert (again == refs).all()


def _to_grid(latlon):
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True).transform(latlon[:, 1], latlon[:, 0])
    return np.stack([x, y], axis=1)
