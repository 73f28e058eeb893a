"""retrieval_agreement: do the engine's embeddings return the same nearest neighbours as FP32's?"""

import numpy as np
import pytest

from trtmake import metrics
from trtmake.config.checks import check_values
from trtmake.errors import UserError


def on_circle(*degrees: float) -> np.ndarray:
    rad = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(rad), np.sin(rad)], axis=1)


# Reference at 0, 10, 25 and 90 degrees: item 1's nearest neighbour is item 0 (10 degrees away,
# item 2 is 15). Moving item 1 to 20 degrees makes item 2 its nearest (5 degrees, item 0 is 20);
# every other item keeps its neighbour (0 -> 1, 2 -> 1, 3 -> 2).
REFERENCE = on_circle(0, 10, 25, 90)
SWAPPED = on_circle(0, 20, 25, 90)


def test_identical_embeddings_agree_fully():
    assert metrics.retrieval_agreement(REFERENCE, REFERENCE.copy()) == 1.0


def test_scaling_rows_changes_no_neighbour():
    scaled = REFERENCE * np.array([[0.5], [3.0], [7.0], [0.1]])
    assert metrics.retrieval_agreement(REFERENCE, scaled) == 1.0


def test_one_swapped_nearest_neighbour_costs_one_item_at_k1():
    assert metrics.nearest_neighbours(REFERENCE, 1)[:, 0].tolist() == [1, 0, 1, 2]
    assert metrics.nearest_neighbours(SWAPPED, 1)[:, 0].tolist() == [1, 2, 1, 2]
    assert metrics.retrieval_agreement(REFERENCE, SWAPPED, k=1) == pytest.approx(0.75)


def test_k2_compares_neighbour_sets_not_their_order():
    # item 1's two nearest are {0, 2} in both (only their order swapped); every other set is equal too
    assert metrics.retrieval_agreement(REFERENCE, SWAPPED, k=2) == 1.0


def test_every_neighbour_changed_gives_zero():
    # reference pairs (0,1) and (2,3) are close; the engine pairs (0,2) and (1,3) instead
    reference = on_circle(0, 5, 90, 95)
    actual = on_circle(0, 90, 5, 95)
    assert metrics.retrieval_agreement(reference, actual) == 0.0


def test_rotation_of_every_embedding_keeps_every_neighbour():
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((40, 16))
    rotation, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    assert metrics.retrieval_agreement(pool, pool @ rotation, k=3) == 1.0
    noisy = pool + rng.standard_normal(pool.shape) * 2.0  # large noise: neighbours do change
    assert metrics.retrieval_agreement(pool, noisy, k=1) < 1.0


@pytest.mark.parametrize("k", [0, -1, 4, True, 1.5])
def test_bad_k_is_refused(k):
    with pytest.raises(ValueError):
        metrics.retrieval_agreement(REFERENCE, REFERENCE, k=k)


def test_pools_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="4 items"):
        metrics.retrieval_agreement(REFERENCE, REFERENCE[:3])


def test_accuracy_pools_every_batch_when_asked():
    reference = [{"emb": REFERENCE[:2]}, {"emb": REFERENCE[2:]}]
    actual = [{"emb": SWAPPED[:2]}, {"emb": SWAPPED[2:]}]
    m = metrics.accuracy(reference, actual, retrieval_k=1)
    assert m["retrieval_agreement"] == pytest.approx(0.75)
    assert m["per_output"]["emb"]["retrieval_agreement"] == pytest.approx(0.75)
    assert "retrieval_agreement" not in metrics.accuracy(reference, actual)


def test_a_margin_leaves_out_only_the_items_fp32_barely_decides():
    # item 0's nearest neighbours are items 1 (cos 0.999) and 2 (0.998): a near tie in FP32, as
    # are 1's and 2's; items 3 and 4 are each other's clear nearest (cos 0.8, next 0.05)
    reference = np.array([[1.0, 0.0, 0.0], [0.999, 0.0447, 0.0], [0.998, 0.0, 0.0632],
                          [0.0, 1.0, 0.0], [0.0, 0.8, 0.6]])
    actual = reference.copy()
    actual[[1, 2]] = reference[[2, 1]]  # the tie flips: item 0's nearest becomes item 2
    assert metrics.retrieval_agreement(reference, actual, 1) == pytest.approx(0.8)
    assert metrics.retrieval_items(reference, 1, margin=0.0) == 5
    assert metrics.retrieval_items(reference, 1, margin=0.01) == 2  # items 3 and 4
    assert metrics.retrieval_agreement(reference, actual, 1, margin=0.01) == 1.0
    broken = reference.copy()
    broken[[3, 4]] = reference[[0, 1]]  # a clear answer changed still counts against the engine
    assert metrics.retrieval_agreement(reference, broken, 1, margin=0.01) < 1.0
    m = metrics.accuracy([{"emb": reference}], [{"emb": actual}], retrieval_k=1, retrieval_margin=0.01)
    assert m["retrieval_items"] == 2 and m["retrieval_agreement"] == 1.0
    none_left = metrics.accuracy([{"emb": reference}], [{"emb": actual}], retrieval_k=1, retrieval_margin=2.0)
    assert "retrieval_agreement" not in none_left
    assert "validation.retrieval_margin" in none_left["retrieval_agreement_unavailable"]


def test_retrieval_k_below_one_is_a_config_error():
    with pytest.raises(UserError, match="validation.retrieval_k"):
        check_values({"validation": {"retrieval_k": 0}})
    check_values({"validation": {"retrieval_k": 5}})


def test_retrieval_agreement_assertion_value_must_be_a_fraction():
    with pytest.raises(UserError, match=r"assertions\[0\].value"):
        check_values({"validation": {"assertions": [{"metric": "retrieval_agreement", "op": ">=", "value": 1.5}]}})
