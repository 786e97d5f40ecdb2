"""Rate units: what one unit of price covers, in the usage quantity's own unit.

Voice quantities are seconds, SMS messages, data bytes. Data units say their base:
KB/MB/GB are powers of 10^3, KiB/MiB/GiB powers of 2^10.
"""

RATE_UNITS: dict[str, tuple[str, int]] = {
    "second": ("voice", 1),
    "minute": ("voice", 60),
    "hour": ("voice", 3600),
    "message": ("sms", 1),
    "byte": ("data", 1),
    "KB": ("data", 1000),
    "MB": ("data", 1000**2),
    "GB": ("data", 1000**3),
    "KiB": ("data", 1024),
    "MiB": ("data", 1024**2),
    "GiB": ("data", 1024**3),
    "unit": ("any", 1),
}


def parse_increments(text: str) -> tuple[int, int]:
    """'60/60' -> (60, 60): the first block, then every next block, in quantity units."""
    parts = str(text).strip().split("/")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"increments {text!r} must look like 60/60, 30/6 or 1/1")
    first, nxt = (int(p) for p in parts)
    if nxt < 1:
        raise ValueError(f"increments {text!r}: the repeating block must be at least 1")
    return first, nxt
