"""Kubernetes resource quantities ("100m", "1.5Gi", "1e3") as cores and bytes."""

import re
from decimal import ROUND_UP, Decimal, InvalidOperation, localcontext

# The grammar of apimachinery's resource.Quantity (pkg/api/resource/quantity.go):
# <signedNumber><suffix>, the suffix binary SI, decimal SI or a decimal exponent.
_QUANTITY = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(.*)", re.ASCII | re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?\d+)", re.ASCII)
_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SI = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
# A quantity is capped at 2**63-1 in magnitude and rounded up to a multiple of 1n.
_MAX = Decimal(2**63 - 1)
_NANO = Decimal("1e-9")


def parse_quantity(text: str) -> Decimal | None:
    """The exact value of a quantity string as resource.Quantity parses it; None if malformed."""
    if not isinstance(text, str):
        return None
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    sign, whole, fraction, suffix = match.groups()
    if not whole and not fraction:
        return None
    digits = f"{sign}{whole or '0'}.{fraction or '0'}"
    with localcontext() as context:
        context.prec = len(text) + 60
        try:
            if suffix in _DECIMAL_SI:
                value = Decimal(digits).scaleb(_DECIMAL_SI[suffix])
            elif suffix in _BINARY_SI:
                value = Decimal(digits) * (2 ** _BINARY_SI[suffix])
            elif (exponent := _EXPONENT.fullmatch(suffix)) is not None:
                value = _scaled(Decimal(digits), int(exponent.group(1)))
            else:
                return None
        except (InvalidOperation, ValueError, OverflowError):
            return None
        if abs(value) > _MAX:
            return _MAX.copy_sign(value)
        return value.quantize(_NANO, rounding=ROUND_UP).normalize()


def _scaled(mantissa: Decimal, power: int) -> Decimal:
    # Exponents far outside the representable range are settled without computing 10**power.
    if mantissa == 0:
        return mantissa
    if mantissa.adjusted() + power > 20:
        return _MAX.copy_sign(mantissa)
    if mantissa.adjusted() + power < -20:
        return _NANO.copy_sign(mantissa)
    return mantissa.scaleb(power)


def cpu_cores(text: str) -> float | None:
    """A CPU quantity in cores ("250m" -> 0.25); None if malformed."""
    value = parse_quantity(text)
    return None if value is None else float(value)


def memory_bytes(text: str) -> int | None:
    """A memory quantity in bytes, rounded up like Quantity.Value() ("1Ki" -> 1024)."""
    value = parse_quantity(text)
    return None if value is None else int(value.to_integral_value(rounding=ROUND_UP))
