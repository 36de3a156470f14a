#!/bin/bash
# roomd — install, upgrade or remove the room controller on a Raspberry Pi (Pi OS Bookworm).
#
#   sudo systemd/install.sh                    install or upgrade (what `make install` runs)
#   sudo systemd/install.sh --with-watchdog    … and arm the Pi's hardware watchdog from systemd
#   sudo systemd/install.sh uninstall          remove the program; keep config, data and user
#   sudo systemd/install.sh uninstall --purge  … and remove config, data and the roomd user too
#   systemd/uninstall.sh [--purge]             same as `install.sh uninstall`
#
# Idempotent: a second run with the same source changes nothing (files are compared before
# being written, the venv is rebuilt only when the source changed).
#
# Environment / options (docs/deploy.md, "install.sh"):
#   DESTDIR=/tmp/root      stage into a temporary root: no user is created, nothing is
#                          chowned, systemctl/udevadm are not called, the host is not touched.
#   --no-systemctl         (or ROOMD_NO_SYSTEMCTL=1) install into / but do not call systemctl
#                          or udevadm (image builders, chroots).
#   ROOMD_SKIP_PIP=1       create the venv but do not pip-install the app (tests).
#   ROOMD_PIP_ARGS="…"     extra pip arguments, e.g. "--no-index --find-links /media/usb/wheels".
#   PYTHON=/usr/bin/python3  the interpreter the venv is built from.
#   ROOMD_EXAMPLE_CONFIG=… the file the first /etc/roomd/roomd.toml is copied from
#                          (default: roomd.example.toml at the top of the repository).
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
PREFIX=/opt/roomd
VENV=$PREFIX/venv
CONFDIR=/etc/roomd
DATADIR=/var/lib/roomd
UNITDIR=/etc/systemd/system
UDEVDIR=/etc/udev/rules.d
SYSUSERSDIR=/etc/sysusers.d
WATCHDOG_DROPIN=/etc/systemd/system.conf.d/roomd-watchdog.conf
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
EXAMPLE_CONFIG=${ROOMD_EXAMPLE_CONFIG:-$REPO/roomd.example.toml}

MODE=install
PURGE=0
WITH_WATCHDOG=0
NO_SYSTEMCTL=${ROOMD_NO_SYSTEMCTL:-0}

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        install | uninstall) MODE=$1 ;;
        --purge) PURGE=1 ;;
        --with-watchdog) WITH_WATCHDOG=1 ;;
        --no-systemctl) NO_SYSTEMCTL=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (try --help)" >&2; exit 64 ;;
    esac
    shift
done
if [[ $PURGE == 1 && $MODE != uninstall ]]; then
    echo "install.sh: --purge only goes with uninstall" >&2
    exit 64
fi

# Host actions (users, ownership, systemctl, udevadm) happen only on a real install.
HOST=1
[[ -n $DESTDIR ]] && HOST=0
SYSTEMCTL=1
[[ $HOST == 0 || $NO_SYSTEMCTL == 1 ]] && SYSTEMCTL=0

if [[ $HOST == 1 && $(id -u) != 0 ]]; then
    echo "install.sh: run as root (sudo), or set DESTDIR= to stage into a directory" >&2
    exit 77
fi

log() { printf '%-10s %s\n' "$1" "$2"; }
d() { printf '%s%s' "$DESTDIR" "$1"; }

# ensure_dir PATH MODE [OWNER:GROUP]
ensure_dir() {
    local path mode owner
    path=$(d "$1") mode=$2 owner=${3:-}
    if [[ -d $path ]]; then
        if [[ $(stat -c %a "$path") != "${mode#0}" ]]; then
            chmod "$mode" "$path"
            log chmod "$1 $mode"
        fi
    else
        mkdir -p "$path"
        chmod "$mode" "$path"
        log mkdir "$1 ($mode)"
    fi
    if [[ $HOST == 1 && -n $owner && $(stat -c %U:%G "$path") != "$owner" ]]; then
        chown "$owner" "$path"
        log chown "$1 $owner"
    fi
}

# put SRC DEST MODE [OWNER:GROUP] — write DEST only when its content or mode differ.
put() {
    local src=$1 rel=$2 mode=$3 owner=${4:-} dest
    dest=$(d "$rel")
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        if [[ $(stat -c %a "$dest") != "${mode#0}" ]]; then
            chmod "$mode" "$dest"
            log chmod "$rel $mode"
        else
            log unchanged "$rel"
        fi
    else
        mkdir -p "$(dirname -- "$dest")"
        install -m "$mode" "$src" "$dest"
        log installed "$rel"
    fi
    if [[ $HOST == 1 && -n $owner && $(stat -c %U:%G "$dest") != "$owner" ]]; then
        chown "$owner" "$dest"
        log chown "$rel $owner"
    fi
}

# keep_or_offer SRC DEST MODE [OWNER:GROUP] — for files the technician edits: install once,
# afterwards never overwrite; a different shipped version is left beside it as DEST.new.
keep_or_offer() {
    local src=$1 rel=$2 mode=$3 owner=${4:-}
    if [[ ! -e $(d "$rel") ]]; then
        put "$src" "$rel" "$mode" "$owner"
    elif cmp -s "$src" "$(d "$rel")"; then
        log unchanged "$rel"
    else
        log kept "$rel (locally edited; never overwritten)"
        put "$src" "$rel.new" 0644
    fi
}

remove() {
    local rel=$1
    if [[ -e $(d "$rel") || -L $(d "$rel") ]]; then
        rm -rf -- "$(d "$rel")"
        log removed "$rel"
    fi
}

source_fingerprint() {
    # What the venv was built from: the package sources, the interpreter and pip's options.
    {
        (cd "$REPO" && find pyproject.toml controller hw audio mqtt_bridge \
            -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 2>/dev/null |
            LC_ALL=C sort -z | xargs -0 sha256sum)
        "$PYTHON" -c 'import sys; print(sys.version)'
        echo "skip_pip=${ROOMD_SKIP_PIP:-0} pip_args=${ROOMD_PIP_ARGS:-}"
    } | sha256sum | cut -d' ' -f1
}

build_venv() {
    local venv stamp fp staging
    venv=$(d "$VENV") stamp=$(d "$VENV")/.roomd-source
    fp=$(source_fingerprint)
    if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$fp" ]]; then
        log unchanged "$VENV (built from this source)"
        return
    fi
    if [[ ! -x $venv/bin/python ]]; then
        # --system-site-packages: Pi OS ships lgpio (python3-lgpio) from apt, not pip.
        if [[ ${ROOMD_SKIP_PIP:-0} == 1 ]]; then
            "$PYTHON" -m venv --system-site-packages --without-pip "$venv"
        else
            "$PYTHON" -m venv --system-site-packages "$venv"
        fi
        log venv "$VENV ($("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
    fi
    if [[ ${ROOMD_SKIP_PIP:-0} == 1 ]]; then
        log skipped "pip install (ROOMD_SKIP_PIP=1): $VENV/bin/roomd not installed"
    else
        # Build from a clean copy so the repository gets no build/ or egg-info droppings.
        staging=$(mktemp -d)
        tar -C "$REPO" --exclude=.git --exclude=.venv --exclude=build --exclude='*.egg-info' \
            --exclude=__pycache__ --exclude=.pytest_cache --exclude=.mypy_cache \
            --exclude=.ruff_cache --exclude=.hypothesis --exclude=tests -cf - . |
            tar -C "$staging" -xf -
        # shellcheck disable=SC2086 # ROOMD_PIP_ARGS is a list of words on purpose
        "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
            ${ROOMD_PIP_ARGS:-} "$staging"
        rm -rf -- "$staging"
        log pip "installed $("$venv/bin/python" -m pip --disable-pip-version-check list 2>/dev/null |
            awk '$1 == "roomd" {print "roomd " $2}')"
    fi
    if [[ -n $DESTDIR ]]; then
        # A venv records its own path; make the staged one point at its final place.
        grep -rlIF -- "$venv" "$venv/bin" "$venv/pyvenv.cfg" 2>/dev/null |
            while read -r f; do sed -i "s|$venv|$VENV|g" "$f"; done
        log relocated "$VENV scripts from \$DESTDIR$VENV"
    fi
    echo "$fp" >"$stamp"
}

do_install() {
    log source "$REPO"
    log destdir "${DESTDIR:-/ (host)}"

    # 1. The service user: declared in sysusers.d (also what a package would ship).
    local sysusers
    sysusers=$(mktemp)
    cat >"$sysusers" <<'EOF'
# roomd: the treatment-room controller's service user (installed by systemd/install.sh).
# gpio: /dev/gpiochip*, /sys/class/pwm (Pi OS udev rules); dialout: serial ports;
# audio: ALSA devices.
u roomd - "roomd treatment-room controller" /var/lib/roomd /usr/sbin/nologin
m roomd gpio
m roomd dialout
m roomd audio
EOF
    put "$sysusers" "$SYSUSERSDIR/roomd.conf" 0644
    rm -f -- "$sysusers"
    if [[ $HOST == 1 ]]; then
        if getent passwd roomd >/dev/null && id -nG roomd | tr ' ' '\n' | grep -qx gpio &&
            id -nG roomd | tr ' ' '\n' | grep -qx dialout &&
            id -nG roomd | tr ' ' '\n' | grep -qx audio; then
            log unchanged "user roomd ($(id -nG roomd))"
        else
            systemd-sysusers "$SYSUSERSDIR/roomd.conf"
            log user "roomd ($(id -nG roomd))"
        fi
    else
        log simulated "user roomd in groups gpio dialout audio (DESTDIR: $SYSUSERSDIR/roomd.conf only)"
    fi
    local own_root_roomd="" own_roomd=""
    if [[ $HOST == 1 ]]; then own_root_roomd=root:roomd own_roomd=roomd:roomd; fi

    # 2. The application: its own venv under /opt/roomd, plus the docs and firmware tool.
    ensure_dir "$PREFIX" 0755
    build_venv
    local f
    for f in "$REPO"/docs/*.md; do
        [[ -e $f ]] && put "$f" "$PREFIX/docs/$(basename -- "$f")" 0644
    done
    put "$REPO/firmware/bootconfig.py" "$PREFIX/firmware/bootconfig.py" 0755
    put "$REPO/firmware/roomd-config.txt" "$PREFIX/firmware/roomd-config.txt" 0644

    # 3. Configuration: the technician's file is never overwritten.
    ensure_dir "$CONFDIR" 0755
    if [[ -f $EXAMPLE_CONFIG ]]; then
        put "$EXAMPLE_CONFIG" "$CONFDIR/roomd.example.toml" 0644
        if [[ -e $(d "$CONFDIR/roomd.toml") ]]; then
            log kept "$CONFDIR/roomd.toml (existing configuration is never overwritten)"
        else
            put "$EXAMPLE_CONFIG" "$CONFDIR/roomd.toml" 0640 "$own_root_roomd"
        fi
    else
        log warning "no example configuration at $EXAMPLE_CONFIG; write $CONFDIR/roomd.toml by hand"
    fi

    # 4. Data: the journal, session reports and the music library.
    ensure_dir "$DATADIR" 0750 "$own_roomd"
    ensure_dir "$DATADIR/music" 0750 "$own_roomd"

    # 5. systemd unit, udev rules, optional system watchdog.
    put "$REPO/systemd/roomd.service" "$UNITDIR/roomd.service" 0644
    keep_or_offer "$REPO/systemd/99-roomd.rules" "$UDEVDIR/99-roomd.rules" 0644
    if [[ $WITH_WATCHDOG == 1 ]]; then
        local wd
        wd=$(mktemp)
        cat >"$wd" <<'EOF'
# roomd: systemd feeds the Raspberry Pi's hardware watchdog (dtparam=watchdog=on in
# config.txt). A hung kernel or PID 1 reboots the Pi. The BCM2835 watchdog cannot count
# beyond ~15 s. Installed by systemd/install.sh --with-watchdog.
[Manager]
RuntimeWatchdogSec=14s
RebootWatchdogSec=2min
EOF
        put "$wd" "$WATCHDOG_DROPIN" 0644
        rm -f -- "$wd"
    fi

    if [[ $SYSTEMCTL == 1 ]]; then
        if udevadm control --reload-rules 2>/dev/null; then
            udevadm trigger --subsystem-match=tty --action=change || true
            log udev "rules reloaded"
        fi
        systemctl daemon-reload
        if systemctl is-enabled --quiet roomd.service; then
            log unchanged "roomd.service enabled"
        else
            systemctl enable roomd.service
            log enabled roomd.service
        fi
        if [[ $WITH_WATCHDOG == 1 ]]; then
            log note "the system watchdog takes effect after 'systemctl daemon-reexec' or a reboot"
        fi
        if systemctl is-active --quiet roomd.service; then
            log note "roomd is running the previous version: 'systemctl restart roomd' when no session is on"
        else
            log note "edit $CONFDIR/roomd.toml, then: systemctl start roomd"
        fi
    else
        log skipped "systemctl enable roomd.service / udevadm reload (no host changes)"
    fi
    log finished "roomd installed"
}

do_uninstall() {
    log destdir "${DESTDIR:-/ (host)}"
    if [[ $SYSTEMCTL == 1 ]]; then
        if systemctl is-enabled --quiet roomd.service 2>/dev/null ||
            systemctl is-active --quiet roomd.service 2>/dev/null; then
            systemctl disable --now roomd.service
            log disabled roomd.service
        fi
    fi
    remove "$UNITDIR/roomd.service"
    remove "$WATCHDOG_DROPIN"
    remove "$PREFIX"
    # The udev rules hold the technician's serial numbers: removed only if never edited.
    if [[ $PURGE == 1 ]] || cmp -s "$REPO/systemd/99-roomd.rules" "$(d "$UDEVDIR/99-roomd.rules")"; then
        remove "$UDEVDIR/99-roomd.rules"
    elif [[ -e $(d "$UDEVDIR/99-roomd.rules") ]]; then
        log kept "$UDEVDIR/99-roomd.rules (edited; --purge removes it)"
    fi
    remove "$UDEVDIR/99-roomd.rules.new"
    if [[ $PURGE == 1 ]]; then
        remove "$CONFDIR"
        remove "$DATADIR"
        remove "$SYSUSERSDIR/roomd.conf"
        if [[ $HOST == 1 ]] && getent passwd roomd >/dev/null; then
            userdel roomd
            log removed "user roomd"
        fi
    else
        log kept "$CONFDIR and $DATADIR, user roomd (--purge removes them)"
    fi
    if [[ $SYSTEMCTL == 1 ]]; then
        systemctl daemon-reload
        udevadm control --reload-rules 2>/dev/null || true
    fi
    log finished "roomd uninstalled"
}

if [[ $MODE == install ]]; then do_install; else do_uninstall; fi
