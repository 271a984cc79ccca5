-- Protocol v1.1 (issue 10 D2): the pairing code the installer read off the gateway's status page / QR code.
-- Central needs the code itself (it keys the pairing MAC of every challenge); it proves only that the installer
-- stood at the gateway, it gives no signing power. NULL for devices registered before v1.1 (never challenged again).
ALTER TABLE devices ADD COLUMN pairing_code text CHECK (pairing_code ~ '^[0-9A-HJKMNP-TV-Z]{8}$');
