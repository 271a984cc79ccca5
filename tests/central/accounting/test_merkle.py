import hashlib

from hypothesis import given
from hypothesis import strategies as st

from central.accounting.merkle import EMPTY_ROOT, merkle_proof, merkle_root, verify_proof


def h(i: int) -> bytes:
    return hashlib.sha256(bytes([i])).digest()


def sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def leaf(x: bytes) -> bytes:
    return sha(b"\x00", x)


def node(a: bytes, b: bytes) -> bytes:
    return sha(b"\x01", a, b)


def test_small_trees_by_hand() -> None:
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle_root([h(0)]) == leaf(h(0))
    assert merkle_root([h(0), h(1)]) == node(leaf(h(0)), leaf(h(1)))
    # odd node promoted unchanged, not paired with itself
    assert merkle_root([h(0), h(1), h(2)]) == node(node(leaf(h(0)), leaf(h(1))), leaf(h(2)))
    five = node(node(node(leaf(h(0)), leaf(h(1))), node(leaf(h(2)), leaf(h(3)))), leaf(h(4)))
    assert merkle_root([h(i) for i in range(5)]) == five


def test_golden_vectors() -> None:
    # pinned so that other implementations (auditors, the web app) can check themselves against ours
    vectors = {
        1: merkle_root([h(i) for i in range(1)]).hex(),
        3: merkle_root([h(i) for i in range(3)]).hex(),
        5: merkle_root([h(i) for i in range(5)]).hex(),
    }
    assert vectors == GOLDEN


GOLDEN = {
    1: "d9de27625445003d8a9739a851e3ff8d41c0683630b4d63a88327a6aaa37c409",
    3: "d1f13800048f5909d4043fc0c152f6643280cba608b672715e56ce159a20629f",
    5: "6b313b611b40676b9e1dfd70c4503f2379f88f0f1c2740fb7e1cacc32c113465",
}


def test_duplicate_last_is_not_the_same_tree() -> None:
    three = [h(0), h(1), h(2)]
    assert merkle_root(three) != merkle_root([*three, h(2)])


def test_leaf_cannot_pose_as_node() -> None:
    a, b = h(0), h(1)
    inner = node(leaf(a), leaf(b))
    assert merkle_root([inner]) != merkle_root([a, b])


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_proofs_verify_and_order_matters(hashes: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(hashes)
    i = data.draw(st.integers(0, len(hashes) - 1))
    proof = merkle_proof(hashes, i)
    assert verify_proof(hashes[i], proof, root)
    assert not verify_proof(bytes(32) if hashes[i] != bytes(32) else b"\x01" * 32, proof, root)
    if len(set(hashes)) > 1:
        rev = list(reversed(hashes))
        if rev != hashes:
            assert merkle_root(rev) != root
