"""The image the Dockerfile builds holds every package pyproject.toml installs and the built web app.

No container engine runs in CI, so this reads the Dockerfile: the image once lacked ``gtxhsm`` (``key_store =
"pkcs11"`` failed with an ImportError in a container) and ``central/web/dist`` (a fresh clone has none, so central
answered "the web app is not built").
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_every_installed_package_is_copied_into_the_image() -> None:
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE, re.M))
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"


def test_the_image_builds_the_web_app() -> None:
    assert "RUN npm run --silent build" in DOCKERFILE
    assert "COPY --from=web /src/central/web/dist ./central/web/dist" in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "**/node_modules" in ignored
    assert ".secrets" in ignored
