#!/bin/bash
# Boot a real systemd as PID 1 of its own namespaces and install Harmony's unit in it, so the
# zipapp can be run under the unit on a machine without systemd (a container, a CI runner).
#
#   unshare --pid --fork --mount --cgroup --uts --mount-proc tools/systemd_trial.sh PYZ UNIT PORT [WATCHDOG]
#
# Needs root (CAP_SYS_ADMIN). The host is never changed: in the new mount namespace every host
# file system is made read-only first, /tmp, /run, /srv and /usr/local/bin are private tmpfs,
# /etc and /var are overlays whose changes live in /run. PYZ becomes /usr/local/bin/harmony.pyz,
# UNIT /etc/systemd/system/harmony.service, with a user `harmony`, /etc/harmony/harmony.toml
# (server.port PORT, library and downloads under /srv) and both credential files; WATCHDOG, if
# given, overrides WatchdogSec in a drop-in. Drive it with `nsenter -t <pid of systemd> -a
# systemctl ...`; kill that systemd to end everything. tests/test_systemd.py does all of this.
set -euo pipefail
pyz=$(realpath "$1")
unit=$(realpath "$2")
port=$3
watchdog=${4:-}

mount --make-rprivate /
findmnt -rn -o TARGET | while read -r target; do
    case "$target" in
        /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) ;;
        *) mount -o remount,bind,ro "$target" 2>/dev/null || true ;;
    esac
done
mount --rbind /dev /dev && mount -o remount,bind,ro /dev
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
mount --rbind /sys /sys && mount -o remount,bind,ro /sys
umount -l /sys/fs/cgroup 2>/dev/null || true
mount -t cgroup2 cgroup2 /sys/fs/cgroup

mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/trial/o
cp "$pyz" /run/trial/harmony.pyz
cp "$unit" /run/trial/harmony.service
mount -t tmpfs -o mode=1777 tmpfs /tmp
for dir in etc var; do
    mkdir -p "/run/trial/o/$dir-up" "/run/trial/o/$dir-work"
    mount -t overlay overlay \
        -o "lowerdir=/$dir,upperdir=/run/trial/o/$dir-up,workdir=/run/trial/o/$dir-work" "/$dir"
done
mount -t tmpfs tmpfs /srv
mount -t tmpfs tmpfs /usr/local/bin
install -m 0755 /run/trial/harmony.pyz /usr/local/bin/harmony.pyz

useradd --system --no-create-home --home-dir /var/lib/harmony --shell /usr/sbin/nologin harmony
install -d -o harmony -g harmony /srv/music /srv/slskd /srv/slskd/downloads
install -d -m 0755 /etc/harmony
cat >/etc/harmony/harmony.toml <<EOF
[server]
port = $port
[data]
dir = "/var/lib/harmony"
[library]
dir = "/srv/music"
[slskd]
downloads_dir = "/srv/slskd/downloads"
[spotify]
client_id = "trial-client-id"
EOF
(umask 077 && printf 'trial-spotify-secret\n' >/etc/harmony/spotify_client_secret)
(umask 077 && printf 'trial-slskd-api-key\n' >/etc/harmony/slskd_api_key)
install -m 0644 /run/trial/harmony.service /etc/systemd/system/harmony.service
if [ -n "$watchdog" ]; then
    mkdir -p /etc/systemd/system/harmony.service.d
    printf '[Service]\nWatchdogSec=%s\n' "$watchdog" >/etc/systemd/system/harmony.service.d/trial.conf
fi
printf '[Unit]\nDescription=Harmony trial: nothing but what is started by hand\n' \
    >/etc/systemd/system/harmony-trial.target

# Refuse to go on unless the host is out of reach.
if touch /usr/.harmony-trial 2>/dev/null; then
    echo "systemd_trial: the host's root file system is writable here; stopping" >&2
    exit 1
fi
if [ -n "$(ls -A /tmp)" ]; then
    echo "systemd_trial: /tmp is not private; stopping" >&2
    exit 1
fi
mount --make-rshared / # systemd moves mounts (credentials) between namespaces
export container=other
exec /lib/systemd/systemd --unit=harmony-trial.target --log-target=null
