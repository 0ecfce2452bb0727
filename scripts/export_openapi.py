"""Write openapi.yaml from the app itself: `python scripts/export_openapi.py` (a test checks it)."""

from __future__ import annotations

from pathlib import Path

import yaml

from service.app import create_app

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    schema = create_app().openapi()
    (ROOT / "openapi.yaml").write_text(yaml.safe_dump(schema, sort_keys=False, allow_unicode=True))
    print(f"wrote {ROOT / 'openapi.yaml'}")


if __name__ == "__main__":
    main()
