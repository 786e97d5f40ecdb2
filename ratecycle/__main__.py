"""`ratecycle` and `python -m ratecycle`: the allocators are set before anything loads."""

from __future__ import annotations

import sys


def main() -> int:
    from .allocators import keep_freed_memory

    keep_freed_memory()
    from .cli import main as cli_main  # imports Polars: after the allocator settings

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
