"""Names vulture reports as unused that are used in ways it cannot see (`make lint` runs vulture over protocol/,
edge/, central/ and this file). Each group says why. Before adding a name, grep the whole repo (tests/, bench/, docs/
included): if nothing uses it, delete it instead. Regenerate candidates with
`vulture protocol/ edge/ central/ --min-confidence 60 --make-whitelist`. Not imported by anything; excluded from ruff (bare names).
"""
from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# Dataclass fields of response/result records: serialised to JSON (asdict, OpenAPI schema) or read by tests/clients.
window_starts_s, window_seconds
readings_merkle_root, retired_at, certified_wh, supply_wh, holder_accounts, frozen_accounts, db_found, db_agrees
token_type, expires_in
locked, order_count, available, epoch_end, settled_at
updated_at, window_end, mint_leaf
fresh, initialised, retried, last_seen_ms
_.retried
_.last_seen_ms

# Enum members and constants mirroring an external spec or stored value (token-2022, HDLC frame types, DB/config).
UNINITIALIZED, INITIALIZED, ACCOUNT_TYPE_ACCOUNT, DEFAULT_ACCOUNT_STATE, IMMUTABLE_OWNER, NAME, URI
CLOSED, CANCELLED, EPOCH
DM, FRMR, UI
MODBUS_TCP, LITTLE, dlms_version

# paho-mqtt callbacks and MQTT v5 CONNECT properties, assigned on the client and called/read by paho.
_.on_socket_open
_.on_socket_register_write
_.on_connect
_.on_disconnect
_.on_message
_.ReceiveMaximum
_.MaximumPacketSize

# Link-callback Protocol (edge/mqtt_link.py) and its implementation in edge/uplink.py (called by the MQTT link).
_.on_connected
_.on_disconnected
_.on_message

# gurux DLMS server callbacks and settings, overriding/read by gurux_dlms's GXDLMSSecureServer base class.
_.isTarget
_.onValidateAuthentication
_.onGetAttributeAccess
_.onGetMethodAccess
_.notifyRead
_.onPostRead
_.handleSnrmRequest
_.windowSizeRX
_.windowSizeTX
_.handleReleaseRequest
_.onPreGet
_.onPostGet
_.onFindObject
objectType, sn, ln
_.onPreRead
_.onPreWrite
_.onPostWrite
_.onConnected
_.onInvalidConnection
_.onDisconnected
_.onPreAction
_.onPostAction
_.setReply
_.getReply
_.getConnectionInfo
_.setCount

# Context-manager `__exit__` parameters (the signature is fixed by the protocol).
et, tb

# In-process fakes and test hooks shipped in the packages, used by tests/, bench/ and the docs.
InMemoryAccountingStore, MemoryGeneration, MemoryDirectory, MemoryCertificateStore, InMemoryIngestStore
InMemoryMarketStore
InMemoryBrokerAccess  # central.broker.memory, the BrokerAccess fake (tests/central/core/test_identity_broker_access.py)
_.link_wallet
_.credit
_.confirm_settlements
InMemoryMqtt, InMemoryWalletStore, FakeLink, FakeMeterReader, ManualClock, static_meters, read_dev_mail
_.add_reading
_.add_device
_.advance_slots
_.on
_.dropped_qos0
_.publish_confirmed
_.wait_connected

# Public API of the packages used by tests/, bench/, the demo and external clients (not by the packages themselves).
parse_mint_memo, list_mine, demo_flow, mint_to_owner, add_signature, minted_wh, sign_transaction_request
reload_module  # gtxhsm: tests re-initialise SoftHSM2 for each private token (tests/hsm_support.py)
decode_batch, decode_address, SHARED_READINGS, BINDING
_.append_many
_.from_orders
_.nr
_.meter_replaced
_.clock_unsynced
_.settle_all
decode_zonal_order_set
_.seller_receives
_.is_utility
_.single
_.crossed

# The advisory-lock registry's lists (central/locks.py), checked for uniqueness by tests/central/test_locks.py.
KEYS, SPACES, TEXTS

# In-memory fakes of identity's store ports and their test-only helpers (used by tests/central/core).
MemoryMeterStore, MemoryDeviceStore, MemoryAccountStore
_.add_meter
_.meter_row
_.device_row
_.disable

# The archive format's one-call writer (all records at once): the format tests build their files with it; production
# streams row groups through ArchiveWriter (central/archive/pg.py).
write_file
_.set_online

# The P1 simulator's fault injection (edge/simulator/p1.py), used by tests/edge/p1/test_reader.py.
_.inject

# Issue 16: standing orders, hourly matching and reports — response fields read by clients, and the memo parser a
# verifier (and tests/central/market/test_matching.py) uses.
parse_memo
_.algorithm
_.canonical_form
_.avg_sell_price
_.avg_buy_price
_.utility_sold_wh
_.utility_bought_wh
_.energy_in_wh
_.energy_out_wh
_.last_epoch
_.last_outcome
_.last_reason

# DLMS security (edge/dlms/, edge/meters/): encoders the tests use to play a meter's side (a pushed data
# notification, general-glo-ciphering of a meter's answer), the counter store's look at the next counter, the push
# receiver's counters (read by tests/edge/dlms/test_gurux_secure.py), and the security levels taken from config by value.
build_data_notification
wrap_general_glo
_.peek
_.received_count
_.dropped
AUTH, ENC, AUTH_ENC

# gurux's server calls these overrides and flags by name (edge/simulator/dlms_gurux.py).
_.generateAARE
_.handleGloDedRequest
_.getAssociationStatus
_.setConnected
_.notifyConnected
