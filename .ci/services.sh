#!/usr/bin/env bash
# Makes sure the local services the tests and the demo use are there and answering on 127.0.0.1:
# PostgreSQL (5432), Mosquitto (1883; tests also start private brokers from the same binary), promtool, SoftHSM2
# (PKCS#11 token of the HSM tests) and Chromium (status-page tests). Starts what is installed but stopped; as root,
# installs what is missing with apt;
# otherwise stops with the exact command to run.
set -uo pipefail

answers() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
is_root() { [ "$(id -u)" = 0 ]; }
apt_updated=0
apt_install() {
    if ! is_root; then
        echo "services: '${*: -1}' is missing. Install it with: sudo apt-get update && sudo apt-get install -y $*" >&2
        exit 1
    fi
    if [ $apt_updated = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL
if ! answers 127.0.0.1 5432; then
    if ! ls /etc/postgresql >/dev/null 2>&1; then apt_install postgresql; fi
    ver=$(ls /etc/postgresql | sort -V | tail -n 1)
    if is_root; then
        pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 || true
    else
        echo "services: PostgreSQL is stopped. Start it with: sudo pg_ctlcluster --skip-systemctl-redirect $ver main start" >&2
        exit 1
    fi
    for _ in $(seq 1 30); do answers 127.0.0.1 5432 && break; sleep 0.5; done
    answers 127.0.0.1 5432 || { echo "services: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
fi
# Streaming replication from 127.0.0.1 (the read-replica tests start a standby with pg_basebackup -R).
hba=$(ls /etc/postgresql/*/main/pg_hba.conf 2>/dev/null | sort -V | tail -n 1)
if [ -n "$hba" ] && ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$hba"; then
    if is_root; then
        echo "host replication all 127.0.0.1/32 trust" >>"$hba"
        psql -h 127.0.0.1 -U postgres -qAtc "SELECT pg_reload_conf()" >/dev/null
    else
        echo "services: add 'host replication all 127.0.0.1/32 trust' to $hba and reload PostgreSQL" >&2
    fi
fi

# Mosquitto
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then apt_install mosquitto; fi
if ! answers 127.0.0.1 1883; then
    if is_root; then
        /usr/sbin/mosquitto -d -c /etc/mosquitto/mosquitto.conf
    else
        echo "services: Mosquitto is stopped. Start it with: sudo mosquitto -d -c /etc/mosquitto/mosquitto.conf" >&2
        exit 1
    fi
    for _ in $(seq 1 20); do answers 127.0.0.1 1883 && break; sleep 0.25; done
    answers 127.0.0.1 1883 || { echo "services: Mosquitto does not answer on 127.0.0.1:1883" >&2; exit 1; }
fi

# promtool (Prometheus): `make test` runs the alert rules' unit tests with it. Only the tool is needed; nothing starts.
if ! command -v promtool >/dev/null 2>&1; then apt_install --no-install-recommends prometheus; fi

# SoftHSM2: the PKCS#11 token of the HSM tests (platform keys, the gateway's device key) and the demo's HSM option
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ] || ! command -v softhsm2-util >/dev/null 2>&1; then apt_install softhsm2; fi

# ejabberd (its MQTT 5 service: tests/central/nodes/test_ejabberd.py; each test starts its own, RUNLEVEL=1 keeps the
# package from starting a system-wide one)
if [ ! -x /usr/sbin/ejabberdctl ]; then RUNLEVEL=1 apt_install --no-install-recommends ejabberd; fi

# wrk: bench/api.py's load generator (C; the aiohttp fallback spends a core of this 2-core kind of machine on itself
# and skews every ratio it prints)
if ! command -v wrk >/dev/null 2>&1; then apt_install wrk; fi

# Chromium (headless, driven by Playwright with executable_path; never `playwright install`)
if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
exit 0
