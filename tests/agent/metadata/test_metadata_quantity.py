from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudmon.agent.metadata.quantity import cpu_cores, memory_bytes, parse_quantity


@pytest.mark.parametrize(
    ("text", "cores"),
    [
        ("100m", 0.1),
        ("0.5", 0.5),
        ("2", 2.0),
        ("1e3", 1000.0),
        ("1E3", 1000.0),
        ("1e-3", 0.001),
        ("250m", 0.25),
        (".5", 0.5),
        ("1.", 1.0),
        ("+3", 3.0),
        ("0", 0.0),
        ("0.1m", 0.0001),  # kept to the nano: Quantity rounds only below 1n
        ("1n", 1e-9),
        ("0.0000000001", 1e-9),  # below 1n rounds up to 1n
    ],
)
def test_cpu_quantities(text, cores):
    assert cpu_cores(text) == pytest.approx(cores, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("128Mi", 128 * 1024 * 1024),
        ("1Gi", 1024**3),
        ("500M", 500_000_000),
        ("1k", 1000),
        ("12345", 12345),
        ("1.5Gi", 1536 * 1024 * 1024),
        ("0.5Ki", 512),
        ("1E", 10**18),  # a lone E is exa, not an exponent
        ("2Ei", 2**61),
        ("1.5", 2),  # Value() rounds up
        ("100m", 1),
        ("1e20", 2**63 - 1),  # capped at the int64 maximum
        ("1e999999999999", 2**63 - 1),
    ],
)
def test_memory_quantities(text, size):
    assert memory_bytes(text) == size


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1K",
        "1e",
        "1ki",
        "Mi",
        "1 Mi",
        "1Mi ",
        "1.2.3",
        "--1",
        "+",
        ".",
        "1e3.5",
        "1Gb",
        "１",
        "1i",
        "0x10",
        "1mi",
        None,
        5,
    ],
)
def test_garbage_is_none(text):
    assert parse_quantity(text) is None
    assert cpu_cores(text) is None
    assert memory_bytes(text) is None


def test_exact_values():
    assert parse_quantity("1.5Gi") == Decimal(1610612736)
    assert parse_quantity("100m") == Decimal("0.1")
    assert parse_quantity("-1.5k") == Decimal(-1500)


@given(st.text(max_size=30))
def test_any_text_parses_or_is_none(text):
    value = parse_quantity(text)
    assert value is None or abs(value) <= 2**63 - 1


@given(
    st.integers(min_value=0, max_value=10**12),
    st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "e-2", "E2"]),
)
def test_integers_with_suffixes(number, suffix):
    factor = {
        "": 1,
        "m": Decimal("0.001"),
        "k": 1000,
        "M": 10**6,
        "G": 10**9,
        "Ki": 1024,
        "Mi": 1024**2,
        "Gi": 1024**3,
        "e3": 1000,
        "e-2": Decimal("0.01"),
        "E2": 100,
    }[suffix]
    expected = min(Decimal(number) * factor, Decimal(2**63 - 1))
    assert parse_quantity(f"{number}{suffix}") == expected


@given(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False))
def test_decimal_text_round_trips(number):
    assert parse_quantity(f"{number:f}") == number
