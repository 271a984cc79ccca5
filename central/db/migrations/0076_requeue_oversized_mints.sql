-- Issue 10 D1: energy mints that the chain outbox failed only because their wallet's unit did not fit in one
-- transaction ("unit does not fit in one transaction") never reached the chain; the planner now splits a wallet's
-- backlog into parts that fit, so put them back to pending (packed normally, not solo) to be minted.
UPDATE chain_intent
SET state = 'pending', last_error = NULL, solo = false, submission_id = NULL, not_before = NULL, updated_at = now()
WHERE kind = 'energy-mint' AND state = 'failed' AND last_error = 'unit does not fit in one transaction';
