-- Hourly consumption matching (central/market/matching.py): energy tokens burned by their holder's wallet, with a
-- memo naming the meter and hour, against the meter's metered import of that hour (accounting windows).
--
-- matching_hours keeps, per meter and hour, the import it was checked against and the Wh redeemed so far (reserved
-- while a burn is in flight, released if it fails): the CHECK makes redeeming the same Wh twice impossible whatever
-- the code does; the service's conditional UPDATE is the check that says why.
CREATE TABLE matching_hours (
    meter_id    uuid NOT NULL REFERENCES meters(id),
    hour        timestamptz NOT NULL CHECK (date_trunc('hour', hour) = hour),
    owner_id    uuid NOT NULL REFERENCES users(id),
    import_wh   bigint NOT NULL CHECK (import_wh >= 0),
    redeemed_wh bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (meter_id, hour),
    CHECK (redeemed_wh >= 0 AND redeemed_wh <= import_wh)
);
CREATE INDEX matching_hours_owner ON matching_hours (owner_id, hour);

CREATE TABLE redemptions (
    id                       uuid PRIMARY KEY,
    user_id                  uuid NOT NULL REFERENCES users(id),
    meter_id                 uuid NOT NULL,
    hour                     timestamptz NOT NULL,
    amount                   bigint NOT NULL CHECK (amount > 0),    -- Wh = energy token base units burned
    wallet                   text NOT NULL,
    memo                     text NOT NULL,
    status                   text NOT NULL DEFAULT 'built'
                             CHECK (status IN ('built', 'submitted', 'confirmed', 'failed', 'expired')),
    message                  bytea NOT NULL,                        -- the exact v0 message the wallet must sign
    last_valid_block_height  bigint NOT NULL,
    signature                text,
    error                    text,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (meter_id, hour) REFERENCES matching_hours (meter_id, hour)
);
CREATE INDEX redemptions_user ON redemptions (user_id, hour);
CREATE INDEX redemptions_open ON redemptions (status) WHERE status IN ('built', 'submitted');
