"""The `ratecycle` command sets its allocators before Polars loads, and leaves a user's own
jemalloc settings alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ratecycle.allocators import JEMALLOC_CONF, JEMALLOC_ENV

ROOT = Path(__file__).resolve().parent.parent
PROBE = ("import os, sys; from ratecycle.allocators import keep_freed_memory; "
         "print(keep_freed_memory(), os.environ['{env}'])")


def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != JEMALLOC_ENV}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_settings_reach_polars_when_applied_before_it_loads():
    assert _python(PROBE.format(env=JEMALLOC_ENV)) == f"True {JEMALLOC_CONF}"


def test_too_late_once_polars_is_imported():
    late = "import polars; " + PROBE.format(env=JEMALLOC_ENV)
    assert _python(late).startswith("False ")


def test_a_users_own_setting_is_kept():
    assert _python(PROBE.format(env=JEMALLOC_ENV), **{JEMALLOC_ENV: "narenas:2"}) == \
        "True narenas:2"


def test_the_command_starts_through_the_settings():
    code = ("import sys; sys.argv = ['ratecycle', '--version']; "
            "from ratecycle.__main__ import main; main()")
    assert _python(code).startswith("ratecycle ")
