"""PostgreSQL access: the asyncpg pool and the versioned SQL migration runner."""

from central.db.migrations import (
    MIGRATIONS_DIR,
    Migration,
    MigrationError,
    apply_migrations,
    discover_migrations,
    migrate_dsn,
)
from central.db.pool import DatabaseError, create_pool

__all__ = [
    "MIGRATIONS_DIR",
    "DatabaseError",
    "Migration",
    "MigrationError",
    "apply_migrations",
    "create_pool",
    "discover_migrations",
    "migrate_dsn",
]
