"""``[certificates]`` configuration, validated once into a frozen dataclass (by :mod:`central.config`).

``uri_base`` defaults to ``http.public_base_url`` + ``/api/v1/certificates`` (filled in by the loader).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from gtxconfig import Check, Match, Range

RENEWABLE_SOURCES = frozenset({"solar", "wind", "hydro", "biomass", "geothermal", "tidal", "wave"})
# Checks are module-level objects: annotations are evaluated in the class namespace (typing.get_type_hints).
_DIVIDES_DAY = Check(lambda v: 86_400 % v == 0, "must divide a day")
_POSITIVE = Check(lambda v: v > 0, "must be positive")


@dataclass(frozen=True)
class CertificateConfig:
    issuer_name: Annotated[str, Match(r".{1,64}", "1..64 characters")] = "GridTokenX REC Authority"
    uri_base: Annotated[str, Match(r"https?://.*", "an http(s) URL")] = "http://127.0.0.1:8080/api/v1/certificates"
    window_s: Annotated[int, Range(1, 86_400), _DIVIDES_DAY] = 900
    expiry_months: Annotated[int, Range(1, 120)] = 12
    request_ttl_s: Annotated[int, Range(10, 3600)] = 120
    expiry_sweep_s: Annotated[float, _POSITIVE] = 300.0
    renewable_sources: frozenset[str] = field(default=RENEWABLE_SOURCES)
