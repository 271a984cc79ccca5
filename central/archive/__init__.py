"""Reading archive (issue 15): hot partitions older than ``archive.after_days`` are exported to one self-describing,
compressed Parquet file per partition range, re-read and compared, recorded, then dropped from PostgreSQL. Read
paths (readings API, mint proofs) fall back to the files; ``gridtokenx-central archive verify`` re-checks a file's
every signature and hash chain. See docs/scaling.md (storage)."""
