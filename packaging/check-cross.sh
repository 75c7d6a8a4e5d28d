#!/bin/sh
# check-cross.sh: the Raspberry Pi binaries in $DIST/linux-arm64 and
# $DIST/linux-armv7 start on Raspberry Pi OS Bullseye (glibc 2.31) and
# Bookworm: each is static (no program interpreter, no needed libraries) or
# needs no GLIBC symbol version above 2.31; arm64 shelfgate is at most
# $MAX_ARM64_SHELFGATE_BYTES; each runs under qemu-user with no loader
# prefix (QEMU_LD_PREFIX unset, no -L). Run by `make check-cross`.
set -eu
DIST=${DIST:-dist}
CMDS=${CMDS:-shelfgate shelfctl shelfsim}
MAX_ARM64_SHELFGATE_BYTES=${MAX_ARM64_SHELFGATE_BYTES:-25000000}
MAX_GLIBC=2.31
fail=0
bad() { echo "check-cross: FAIL $*"; fail=1; }

for pair in linux-arm64:qemu-aarch64-static:AArch64 linux-armv7:qemu-arm-static:ARM; do
	dir=${pair%%:*}; rest=${pair#*:}; qemu=${rest%%:*}; machine=${rest#*:}
	command -v "$qemu" >/dev/null 2>&1 || { echo "check-cross: $qemu missing: apt-get install qemu-user-static (or make deps)"; exit 1; }
	for c in $CMDS; do
		f=$DIST/$dir/$c
		[ -f "$f" ] || { bad "$f missing: run make cross"; continue; }
		m=$(readelf -hW "$f" | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }')
		case "$m" in *"$machine"*) ;; *) bad "$f: machine '$m', want $machine";; esac
		size=$(wc -c <"$f")
		interp=$(readelf -lW "$f" | grep -c 'program interpreter' || true)
		needed=$(readelf -dW "$f" 2>/dev/null | grep -c '(NEEDED)' || true)
		# Highest GLIBC_x.y symbol version the binary asks for (none when static).
		glibc=$(readelf -VW "$f" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
		if [ "$interp" = 0 ] && [ "$needed" = 0 ]; then
			link="static (no interpreter, no needed libraries)"
		else
			link="dynamic ($needed needed libraries)"
		fi
		echo "check-cross: $f: $size bytes, $link, highest GLIBC symbol version: ${glibc:-none}"
		if [ -n "$glibc" ] && [ "$(printf '%s\n%s\n' "$glibc" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]; then
			bad "$f needs GLIBC_$glibc > $MAX_GLIBC (Raspberry Pi OS Bullseye)"
		fi
		if [ "$dir" = linux-arm64 ] && [ "$c" = shelfgate ] && [ "$size" -gt "$MAX_ARM64_SHELFGATE_BYTES" ]; then
			bad "$f is $size bytes > $MAX_ARM64_SHELFGATE_BYTES"
		fi
		if readelf -SW "$f" | grep -q '\.symtab'; then
			bad "$f is not stripped"
		fi
	done

	run() { env -u QEMU_LD_PREFIX "$qemu" "$@"; }
	g=$DIST/$dir/shelfgate
	if [ -f "$g" ]; then
		v=$(run "$g" version) || bad "$qemu $g version"
		echo "check-cross: $qemu $g version: $v"
		case "$v" in *"${VERSION:-}"*) ;; *) bad "$g version '$v' does not carry '${VERSION:-}'";; esac
		out=$(run "$g" check-config configs/demo.yaml) || bad "$qemu $g check-config configs/demo.yaml: $out"
		echo "check-cross: $qemu $g check-config: $out"
	fi
	if [ -f "$DIST/$dir/shelfctl" ]; then
		run "$DIST/$dir/shelfctl" help >/dev/null || bad "$qemu $DIST/$dir/shelfctl help"
		echo "check-cross: $qemu $DIST/$dir/shelfctl help: ok"
	fi
	if [ -f "$DIST/$dir/shelfsim" ]; then
		out=$(run "$DIST/$dir/shelfsim" run --scenario configs/scenarios/corner-shop.yaml --hours 0.05 2>&1) ||
			bad "$qemu $DIST/$dir/shelfsim run: $out"
		echo "check-cross: $qemu $DIST/$dir/shelfsim run (0.05 h): $(echo "$out" | tail -1)"
	fi
done
[ "$fail" = 0 ] || exit 1
echo "check-cross: all passed"
