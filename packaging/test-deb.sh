#!/bin/sh
# test-deb.sh: checks the packages `make deb` built in $DIST.
#  1. every package (amd64, arm64, armhf): control fields, file list with
#     owners and modes, conffiles, maintainer scripts, the binaries' machine;
#  2. the amd64 package installed into a scratch root with
#     `dpkg --root --force-script-chrootless` (postinst runs on the host
#     against the scratch /etc via DPKG_ROOT): service user, device groups
#     (missing ones created, existing ones kept), state directory; reinstall
#     over a local config edit keeps the edit; remove keeps the conffile and
#     the outbox directory; purge removes the conffile but not the outbox;
#  3. the installed binary: version, check-config of the shipped config, and
#     a few seconds of `run` against the demo config.
# Run by `make test-deb`.
set -eu
DIST=${DIST:-dist}
: "${DEB_VERSION:?}"
pass=0
failed=0
ok() { pass=$((pass + 1)); echo "test-deb: ok   $*"; }
bad() { failed=$((failed + 1)); echo "test-deb: FAIL $*"; }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The file list every package must have: mode owner/group path.
cat >"$work/want" <<'LIST'
drwxr-xr-x root/root ./etc/shelfgate/
-rw-r--r-- root/root ./etc/shelfgate/shelfgate.yaml
-rw-r--r-- root/root ./lib/systemd/system/shelfgate.service
-rwxr-xr-x root/root ./usr/bin/shelfctl
-rwxr-xr-x root/root ./usr/bin/shelfgate
-rwxr-xr-x root/root ./usr/bin/shelfsim
-rw-r--r-- root/root ./usr/share/doc/shelfgate/examples/shelfgate.example.yaml
-rw-r--r-- root/root ./usr/share/doc/shelfgate/operations.md
LIST

for pair in amd64:X86-64 arm64:AArch64 armhf:ARM; do
	arch=${pair%%:*}; machine=${pair#*:}
	deb=$DIST/shelfgate_${DEB_VERSION}_$arch.deb
	[ -f "$deb" ] || { bad "$deb missing: run make deb"; continue; }
	echo "test-deb: $deb ($(wc -c <"$deb") bytes)"
	check "$arch: Package shelfgate" sh -c "dpkg-deb -f '$deb' Package | grep -qx shelfgate"
	check "$arch: Architecture $arch" sh -c "dpkg-deb -f '$deb' Architecture | grep -qx '$arch'"
	check "$arch: Version $DEB_VERSION" sh -c "dpkg-deb -f '$deb' Version | grep -qxF '$DEB_VERSION'"
	# "mode owner/group path" of regular files and directories we ship
	# (the parents nfpm adds, /usr, /usr/bin, ..., are not ours to check).
	dpkg-deb -c "$deb" | awk '{ print $1, $2, $6 }' | sort >"$work/got-$arch"
	if grep -vxFf "$work/got-$arch" "$work/want" >"$work/missing"; then
		bad "$arch: contents lack or differ from (mode owner path): $(tr '\n' ';' <"$work/missing")"
		cat "$work/got-$arch"
	else
		ok "$arch: dpkg-deb -c has every file with its mode and owner"
	fi
	rm -rf "$work/ctl" "$work/x"
	dpkg-deb -e "$deb" "$work/ctl"
	check "$arch: conffiles is exactly /etc/shelfgate/shelfgate.yaml" \
		sh -c "[ \"\$(cat '$work/ctl/conffiles')\" = /etc/shelfgate/shelfgate.yaml ]"
	for s in postinst prerm postrm; do
		check "$arch: $s is an executable script" test -x "$work/ctl/$s"
	done
	dpkg-deb -x "$deb" "$work/x"
	for c in shelfgate shelfctl shelfsim; do
		check "$arch: /usr/bin/$c is $machine and static" sh -c \
			"readelf -hW '$work/x/usr/bin/$c' | grep -q 'Machine:.*$machine' && ! readelf -lW '$work/x/usr/bin/$c' | grep -q 'program interpreter'"
	done
done

# The unit's exposure as systemd rates it (target <= 3.0), where
# systemd-analyze can judge a unit file offline (systemd >= 250).
unit=$work/x/lib/systemd/system/shelfgate.service
if [ -f "$unit" ] && command -v systemd-analyze >/dev/null 2>&1 &&
	sec=$(cd "$work" && systemd-analyze security --offline=true --no-pager "$unit" 2>&1); then
	score=$(echo "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	check "systemd-analyze security: exposure $score <= 3.0" awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 3.0) }'
else
	echo "test-deb: systemd-analyze security --offline not available here: unit exposure not rated"
fi

# A scratch root: the /etc files postinst edits, dialout already there (its
# gid must be kept), gpio, spi, i2c and input missing (to be created).
R=$work/root
mkdir -p "$R/etc" "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers" "$R/usr/sbin"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$R/etc/passwd"
printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >"$R/etc/shadow"
printf 'root:x:0:\ndialout:x:20:\nnogroup:x:65534:\n' >"$R/etc/group"
printf 'root:*::\ndialout:*::\nnogroup:*::\n' >"$R/etc/gshadow"
chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
dpkgr() { dpkg --root="$R" --force-script-chrootless --force-bad-path --log=/dev/null "$@"; }

deb=$DIST/shelfgate_${DEB_VERSION}_amd64.deb
if [ "$(dpkg --print-architecture)" != amd64 ]; then
	echo "test-deb: not an amd64 host: scratch-root install not run"
elif ! dpkgr -i "$deb" >"$work/dpkg.log" 2>&1; then
	cat "$work/dpkg.log"
	bad "dpkg --root -i $deb"
else
	ok "dpkg --root -i (postinst ran chroot-less)"
	check "dpkg status: install ok installed" sh -c "dpkg --root='$R' -s shelfgate | grep -qx 'Status: install ok installed'"
	pw=$(grep '^shelfgate:' "$R/etc/passwd" || true)
	uid=$(echo "$pw" | cut -d: -f3)
	gid=$(grep '^shelfgate:' "$R/etc/group" | cut -d: -f3)
	echo "test-deb: passwd entry: $pw"
	check "shelfgate is a system user (uid $uid < 1000)" test -n "$uid" -a "${uid:-1000}" -lt 1000
	check "shelfgate has home /var/lib/shelfgate and shell nologin" sh -c "echo '$pw' | grep -q ':/var/lib/shelfgate:/usr/sbin/nologin\$'"
	check "shelfgate has no password (locked)" sh -c "grep '^shelfgate:' '$R/etc/shadow' | cut -d: -f2 | grep -qv '^\$'"
	for g in gpio spi i2c dialout input; do
		line=$(grep "^$g:" "$R/etc/group" || true)
		check "group $g exists with member shelfgate ($line)" sh -c "echo '$line' | cut -d: -f4 | tr , '\n' | grep -qx shelfgate"
	done
	check "dialout kept its gid 20" grep -q '^dialout:x:20:' "$R/etc/group"
	for g in gpio spi i2c input; do
		ggid=$(grep "^$g:" "$R/etc/group" | cut -d: -f3)
		check "group $g created as a system group (gid $ggid < 1000)" test -n "$ggid" -a "${ggid:-1000}" -lt 1000
	done
	st=$(stat -c '%a %u:%g' "$R/var/lib/shelfgate" 2>/dev/null || echo missing)
	check "/var/lib/shelfgate is 750 $uid:$gid (got $st)" test "$st" = "750 $uid:$gid"
	check "installed /usr/bin/shelfgate is 755" test "$(stat -c %a "$R/usr/bin/shelfgate")" = 755
	check "installed conffile is 644" test "$(stat -c %a "$R/etc/shelfgate/shelfgate.yaml")" = 644

	# Reinstall (dpkg treats it as an upgrade) over a local config edit.
	echo "# local edit by the operator" >>"$R/etc/shelfgate/shelfgate.yaml"
	if dpkgr -i "$deb" >"$work/dpkg.log" 2>&1; then ok "reinstall (upgrade path, postinst again)"; else cat "$work/dpkg.log"; bad "reinstall"; fi
	check "upgrade kept the local edit of the conffile" grep -q '^# local edit by the operator' "$R/etc/shelfgate/shelfgate.yaml"
	check "postinst is idempotent (one shelfgate user)" test "$(grep -c '^shelfgate:' "$R/etc/passwd")" = 1
	check "usermod did not duplicate group members" sh -c "! grep -q 'shelfgate,shelfgate' '$R/etc/group'"

	# The installed binary.
	v=$("$R/usr/bin/shelfgate" version 2>&1 || true)
	check "installed shelfgate version carries ${VERSION:-?} ($v)" sh -c "echo '$v' | grep -qF -- '${VERSION:-?}'"
	sed "s#/var/lib/shelfgate/outbox.db#$work/state/outbox.db#" "$R/etc/shelfgate/shelfgate.yaml" >"$work/shipped.yaml"
	mkdir -p "$work/state"
	if out=$("$R/usr/bin/shelfgate" check-config "$work/shipped.yaml" 2>&1); then
		ok "shipped config passes check-config (outbox dir moved to the scratch dir): $out"
	else
		bad "shipped config fails check-config: $out"
	fi

	# A few seconds of the gateway on the demo config (simulated warehouse,
	# embedded broker on a free port, metrics off) from the installed tree.
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18831)
	sed -e "s#127.0.0.1:1883#127.0.0.1:$port#" -e "s#configs/models/#$PWD/configs/models/#" -e 's#^\(  listen:\).*#\1 ""#' configs/demo.yaml >"$work/demo.yaml"
	if out=$(cd "$work" && timeout 60 "$R/usr/bin/shelfgate" run --config demo.yaml --duration 5s --summary 2>&1); then
		summary=$(echo "$out" | grep SUMMARY || true)
		check "installed shelfgate ran 5 s on the demo config: $summary" test -n "$summary"
	else
		echo "$out" | tail -20
		bad "installed shelfgate run --config demo.yaml --duration 5s"
	fi

	if dpkgr -r shelfgate >"$work/dpkg.log" 2>&1; then ok "dpkg --root -r"; else cat "$work/dpkg.log"; bad "remove"; fi
	check "remove took the binaries" test ! -e "$R/usr/bin/shelfgate"
	check "remove kept the conffile" test -f "$R/etc/shelfgate/shelfgate.yaml"
	check "remove kept /var/lib/shelfgate" test -d "$R/var/lib/shelfgate"
	if dpkgr -P shelfgate >"$work/dpkg.log" 2>&1; then ok "dpkg --root -P"; else cat "$work/dpkg.log"; bad "purge"; fi
	check "purge removed the conffile" test ! -e "$R/etc/shelfgate/shelfgate.yaml"
	check "purge kept /var/lib/shelfgate (the outbox may hold undelivered rows)" test -d "$R/var/lib/shelfgate"
fi

echo "test-deb: $pass passed, $failed failed"
[ "$failed" = 0 ]
