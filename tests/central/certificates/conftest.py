"""Certificate test fixtures live in ``support`` (importable by tests); re-exported here for pytest."""

from tests.central.certificates.support import chain_env, svc_env

__all__ = ["chain_env", "svc_env"]
