"""Bit packing matches the kernel convention exactly."""
import numpy as np
import pytest

from edgebnn.bits import high_bits_clear, pack_signs, unpack_negative, unpack_signs, words


def test_layout_lsb_first_negative_is_one():
    x = np.ones(130, np.float32)
    x[[0, 3, 64, 129]] = -1
    x[5] = 0.0                      # zero counts as +1
    p = pack_signs(x)
    assert p.dtype == np.uint64 and p.shape == (3,)
    assert p[0] == (1 << 0) | (1 << 3)
    assert p[1] == 1
    assert p[2] == 1 << 1          # bit 129 -> word 2, bit 1; bits above 130 stay 0


@pytest.mark.parametrize("c", [1, 3, 63, 64, 65, 200])
def test_round_trip_random(c):
    rng = np.random.default_rng(c)
    x = rng.standard_normal((3, 2, c)).astype(np.float32)
    p = pack_signs(x)
    assert p.shape == (3, 2, words(c))
    np.testing.assert_array_equal(unpack_negative(p, c), x < 0)
    np.testing.assert_array_equal(unpack_signs(p, c), np.where(x < 0, -1, 1))
    assert high_bits_clear(p, c)
    if c % 64:
        p[..., -1] |= np.uint64(1) << np.uint64(63)
        assert not high_bits_clear(p, c)
