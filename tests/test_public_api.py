"""The package root is the API: a sorted __all__ that names exactly what the root exports."""

from __future__ import annotations

import lrsched


def test_all_is_sorted_and_complete() -> None:
    exported = {name for name in vars(lrsched) if not name.startswith("_")}
    modules = {name for name in exported if type(getattr(lrsched, name)).__name__ == "module"}
    # ruff's isort-style order: CONSTANTS, then Classes, then functions; each alphabetical.
    def order(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert list(lrsched.__all__) == sorted(lrsched.__all__, key=order)
    assert set(lrsched.__all__) == exported - modules


def test_library_imports_no_web_or_queue_code() -> None:
    import subprocess
    import sys

    code = (
        "import sys, lrsched, lrsched.specs, lrsched.compile;"
        "bad = [m for m in ('fastapi', 'celery', 'redis', 'httpx', 'starlette') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
