"""Distance index and snapped distances: the published rules, edge cases included."""
import numpy as np
import pytest

from geocontext.typetags.distance import (
    DIST_MAP,
    distance_index,
    distance_metres,
    snap_metres,
    snapped_distance,
)


def test_zero_and_empty_are_index_zero_unknown_is_22():
    assert distance_index(["0", "", "Unknown"]).tolist() == [0, 0, 22]


def test_every_power_of_two_up_to_2_20():
    values = [str(2**k) for k in range(21)]
    assert distance_index(values).tolist() == list(range(1, 22))
    assert distance_index([2**k for k in range(21)]).tolist() == list(range(1, 22))  # numbers as well as strings


@pytest.mark.parametrize("value", ["3", "300", "255", "2097152", "-4", "1.0", "256.0", "abc", "unknown", None, np.nan])
def test_anything_else_is_unknown(value):
    assert distance_index([value]).tolist() == [22]


def test_surrounding_spaces_are_ignored():
    assert distance_index([" 256 ", "\t8"]).tolist() == [9, 4]


def test_table_has_24_keys_for_23_used_rows():
    assert len(DIST_MAP) == 24 and sorted(set(DIST_MAP.values())) == list(range(23))


def test_distance_metres():
    m = distance_metres(["0", "", "256", "300", "Unknown", "abc", None])
    assert m[:4].tolist() == [0, 0, 256, 300] and np.isnan(m[4:]).all()


def test_snap_down_to_a_power_of_two():
    assert snap_metres([0, 0.4, 1, 1.99, 2, 255.9, 256, 257, 1000, np.nan, -1]).tolist() == [
        "0", "0", "1", "1", "2", "128", "256", "256", "512", "Unknown", "Unknown"]


def test_snapped_distance_from_grid_positions():
    # camera (e, n), subject (e, n): a 300-400-500 triangle, the same point, a camera never given (0, 0), a NaN
    got = snapped_distance([100_300, 200_000, 0, np.nan], [200_400, 300_000, 0, 1],
                           [100_000, 200_000, 150_000, 1], [200_000, 300_000, 250_000, 1])
    assert got.tolist() == ["256", "0", "Unknown", "Unknown"]
    assert distance_index(got).tolist() == [9, 0, 22, 22]
