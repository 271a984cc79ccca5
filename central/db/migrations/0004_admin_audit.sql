-- Every state-changing request by an admin or a REC authority (issue 14; central/http/audit.py): who, what route,
-- which resource, from where, and how it ended. Written by the HTTP layer for every such route, before the action
-- (status NULL) and completed after it, so an action whose process died mid-way is still on record.
CREATE TABLE admin_audit (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_id     uuid NOT NULL,
    actor_role   text NOT NULL,
    method       text NOT NULL,
    -- the declared route template (``/api/v1/admin/users/{user_id}/role``) and its path parameters
    route        text NOT NULL,
    params       jsonb NOT NULL DEFAULT '{}'::jsonb,
    address      text NOT NULL,
    -- the HTTP status answered; NULL while running, or when the process died before answering
    status       integer,
    error_code   text,
    finished_at  timestamptz
);
CREATE INDEX admin_audit_at ON admin_audit (at);
CREATE INDEX admin_audit_actor ON admin_audit (actor_id, at);
