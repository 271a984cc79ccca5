-- Issue 12: the settings page lists a user's active sessions (refresh-token families) with the browser they were
-- opened from. The login's User-Agent is kept with each refresh token of the family (rotation copies it); a
-- family's first token's created_at is when the session began, its newest token's created_at when it was last used.
ALTER TABLE refresh_tokens ADD COLUMN user_agent text NOT NULL DEFAULT '';
