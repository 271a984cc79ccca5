"""How identity's exceptions answer over HTTP (applied by the route adapter to every identity route)."""

from central.broker.errors import BrokerError
from central.http.errors import ErrorMap, ErrorRule
from central.identity import errors as e

ERRORS: ErrorMap = {
    e.WeakPasswordError: ErrorRule(400, "weak_password"),
    e.RoleNotAllowedError: ErrorRule(403, "role_not_allowed"),
    e.EmailTakenError: ErrorRule(409, "email_taken"),
    e.RateLimitedError: ErrorRule(429, "rate_limited"),
    e.InvalidTokenError: ErrorRule(400, "invalid_token"),
    e.InvalidCredentialsError: ErrorRule(401, "invalid_credentials"),
    e.WrongPasswordError: ErrorRule(400, "invalid_credentials"),
    e.EmailNotVerifiedError: ErrorRule(403, "email_not_verified"),
    e.InvalidRefreshTokenError: ErrorRule(401, "invalid_refresh_token"),
    e.UnknownUserError: ErrorRule(401, "unauthorized"),
    e.NotFoundError: ErrorRule(404, "not_found"),
    e.LastAdminError: ErrorRule(409, "last_admin"),
    e.InvalidDeviceIdError: ErrorRule(400, "invalid_device_id"),
    e.InvalidPairingCodeError: ErrorRule(400, "invalid_pairing_code"),
    e.DuplicateSerialError: ErrorRule(400, "duplicate_serial"),
    e.DeviceExistsError: ErrorRule(409, "device_exists"),
    e.SerialTakenError: ErrorRule(409, "serial_taken"),
    e.DeviceRevokedError: ErrorRule(409, "device_revoked"),
    e.NotSuspendedError: ErrorRule(409, "not_suspended"),
    e.UnknownActionError: ErrorRule(400, "invalid_request"),
    e.NoPairingCodeError: ErrorRule(409, "no_pairing_code"),
    e.NoSigningKeyError: ErrorRule(503, "unavailable"),
    e.InvalidChallengeError: ErrorRule(400, "invalid_challenge"),
    e.BadChallengeSignatureError: ErrorRule(400, "bad_signature"),
    e.InvalidMeterKeyError: ErrorRule(400, "invalid_meter_key"),
    e.MeterClaimedError: ErrorRule(409, "meter_claimed"),
    # the broker did not take a revocation (nothing was recorded): the admin tries again
    BrokerError: ErrorRule(503, "broker_unavailable", retry_after_s=5),
}
