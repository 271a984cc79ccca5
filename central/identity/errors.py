"""Identity's exception tree: what accounts, devices and meters refuse, in domain terms. The HTTP boundary maps these
to statuses and codes (``central/identity/http_errors.py``); messages never carry a secret (password, token, key)."""

from central.errors import CentralError


class IdentityError(CentralError):
    """Base of every error identity raises on purpose."""


class RateLimitedError(IdentityError):
    """Too many attempts in the window; ``retry_after_s`` says when the next one may succeed."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class NotFoundError(IdentityError):
    """No such account, device or owned meter (for this caller)."""


# --- accounts ----------------------------------------------------------------------------------------------------
class WeakPasswordError(IdentityError):
    """The password is shorter than ``auth.min_password_length``."""


class RoleNotAllowedError(IdentityError):
    """The role cannot be chosen at self-service registration."""


class EmailTakenError(IdentityError):
    """An account with this e-mail address exists."""


class RegistrationRateLimitedError(RateLimitedError):
    """Too many registrations from one address or for one e-mail address in the last hour."""


class LoginRateLimitedError(RateLimitedError):
    """Too many failed password attempts (per account and address, per address, per account)."""


class InvalidTokenError(IdentityError):
    """An e-mail (verification or reset) token is unknown, expired or already used."""


class InvalidCredentialsError(IdentityError):
    """Wrong e-mail address or password at login (or a disabled account)."""


class WrongPasswordError(IdentityError):
    """The current password given to change it is wrong."""


class EmailNotVerifiedError(IdentityError):
    """Login needs a verified e-mail address (``auth.require_verified_email``)."""


class InvalidRefreshTokenError(IdentityError):
    """A refresh token is unknown, expired, revoked or its account disabled."""


class UnknownUserError(IdentityError):
    """The authenticated caller's account no longer exists."""


class SessionNotFoundError(NotFoundError):
    """No active session of this user has that id."""


class UserNotFoundError(NotFoundError):
    """No account with this id."""


class LastAdminError(IdentityError):
    """The change would leave no admin account."""


# --- devices -----------------------------------------------------------------------------------------------------
class InvalidDeviceIdError(IdentityError):
    """The device id is not the base58 Ed25519 public key of a gateway."""


class InvalidPairingCodeError(IdentityError):
    """The pairing code is not an 8-character Crockford base32 code."""


class DuplicateSerialError(IdentityError):
    """The same meter serial appears twice in one request."""


class DeviceExistsError(IdentityError):
    """The device is already registered (and its registration is not stale)."""


class SerialTakenError(IdentityError):
    """A meter with this serial is already registered."""


class DeviceNotFoundError(NotFoundError):
    """No such device, or not one the caller may see."""


class DeviceRevokedError(IdentityError):
    """The device is revoked (final)."""


class NotSuspendedError(IdentityError):
    """Only a suspended device can be reinstated."""


class UnknownActionError(IdentityError):
    """A status change other than suspend, reinstate or revoke."""


class NoPairingCodeError(IdentityError):
    """The device was registered without a pairing code, so no challenge it accepts can be made."""


class NoSigningKeyError(IdentityError):
    """Central has no signing key, so it cannot sign challenges."""


class InvalidChallengeError(IdentityError):
    """The challenge answered is unknown, already used or expired."""


class BadChallengeSignatureError(IdentityError):
    """The challenge answer's signature does not verify under the device key."""


# --- meters ------------------------------------------------------------------------------------------------------
class ClaimRateLimitedError(RateLimitedError):
    """Too many claim attempts by the user, or wrong keys for the serial, in the last hour."""


class InvalidMeterKeyError(IdentityError):
    """Unknown serial or wrong meter key."""


class MeterClaimedError(IdentityError):
    """The meter is claimed by another account."""


class MeterNotOwnedError(NotFoundError):
    """The caller owns no meter with this serial."""


# --- mail --------------------------------------------------------------------------------------------------------
class MailError(IdentityError):
    """A message could not be handed to the mail system."""
