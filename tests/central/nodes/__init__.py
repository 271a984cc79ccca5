"""Several independent central nodes sharing PostgreSQL, the broker and one ledger."""
