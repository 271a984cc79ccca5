-- Energy accounting (DESIGN D7): per-meter checkpoints and final settlement windows.
-- See central/accounting/settlement.py for the definitions (continuous register, floor interpolation, finality).

-- Frozen state after the last final window of a meter (one row per accounted meter).
CREATE TABLE accounting_checkpoints (
    meter_id          uuid PRIMARY KEY REFERENCES meters(id),
    window_ms         integer NOT NULL CHECK (window_ms > 0),
    boundary_ms       bigint NOT NULL,          -- end of the last final window
    cum_import        bigint NOT NULL,          -- continuous registers at boundary_ms (frozen)
    cum_export        bigint NOT NULL,
    anchor_ts         bigint NOT NULL,          -- the last reading at or before boundary_ms
    anchor_seq        bigint NOT NULL,
    anchor_hash       bytea NOT NULL CHECK (length(anchor_hash) = 32),
    anchor_raw_import bigint NOT NULL,
    anchor_raw_export bigint NOT NULL,
    anchor_cum_import bigint NOT NULL,
    anchor_cum_export bigint NOT NULL,
    origin_import     bigint NOT NULL,          -- continuous registers of the meter's first reading
    origin_export     bigint NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One row per final (meter, window): written together with the checkpoint, in one transaction, exactly once.
-- Windows with export_wh > 0 are minted to the owner (accrued while the owner has no linked wallet).
CREATE TABLE energy_windows (
    meter_id        uuid NOT NULL REFERENCES meters(id),
    window_start_ms bigint NOT NULL,
    window_end_ms   bigint NOT NULL CHECK (window_end_ms > window_start_ms),
    owner_id        uuid NOT NULL REFERENCES users(id),   -- owner when the window became final
    import_wh       bigint NOT NULL CHECK (import_wh >= 0),
    export_wh       bigint NOT NULL CHECK (export_wh >= 0),
    start_import    bigint NOT NULL,
    start_export    bigint NOT NULL,
    end_import      bigint NOT NULL,
    end_export      bigint NOT NULL,
    record_hashes   bytea[] NOT NULL,       -- the signed records used, in accounting order
    merkle_root     bytea NOT NULL CHECK (length(merkle_root) = 32),
    finalised_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, window_start_ms)
);
CREATE INDEX energy_windows_owner ON energy_windows (owner_id, window_start_ms);
