"""envs.process_vector: object paths and row concatenation (the process envs are tested per env)."""

import numpy as np
import pytest

from envs.process_vector import concat_rows, load_object


def test_load_object_reads_module_colon_name():
    assert load_object("numpy:concatenate") is np.concatenate
    with pytest.raises(ValueError, match=r"path='numpy.concatenate': expected 'package.module:Name'"):
        load_object("numpy.concatenate")


def test_concat_rows_keeps_tuples_and_row_order():
    first = (np.array([[1.0, 2.0], [3.0, 4.0]]), {"nc": np.array([[1.0, 0.0], [1.0, 1.0]])})
    second = (np.array([[5.0, 6.0]]), {"nc": np.array([[0.0, 0.0]]), "_extra": np.array([True])})
    totals, subs = concat_rows([first, second], [2, 1])
    assert totals.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert subs["nc"].tolist() == [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]] and subs["_extra"].tolist() == [False, False, True]
