#!/bin/sh
# Build a minimal busybox rootfs from Debian's busybox-static: one static binary, its applet
# symlinks, and the few files a container user expects (/etc/passwd, /etc/group).
# Usage: tools/mkrootfs.sh ROOTFS_DIR
set -eu
rootfs=$1
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "mkrootfs: $busybox missing: apt-get install busybox-static" >&2; exit 1; }
rm -rf "$rootfs.tmp"
mkdir -p "$rootfs.tmp"
cd "$rootfs.tmp"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root home/user var/tmp run
chmod 1777 tmp var/tmp
cp "$busybox" bin/busybox
for applet in $(bin/busybox --list); do
    [ -e "bin/$applet" ] || ln -s busybox "bin/$applet"
done
cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
daemon:x:1:
tty:x:5:
users:x:100:
user:x:1000:
nogroup:x:65534:
GROUP
echo "pyoci" > etc/hostname
chown 1000:1000 home/user
cd - >/dev/null
rm -rf "$rootfs"
mv "$rootfs.tmp" "$rootfs"
