#!/bin/sh
# collect-libs.sh BINARY DEST
#
# Copies into DEST the shared libraries BINARY needs (as ldd resolves them,
# transitively), except glibc's own: the distroless runtime image ships glibc
# and must keep its copy. For ksef-pipeline's binaries that is libxml2 and
# what it links (ICU, liblzma, zlib, libstdc++, libgcc_s). Fails when a
# library cannot be resolved, so a broken image is never built.
set -eu

bin=$1
dest=$2
mkdir -p "$dest"

out=$(ldd "$bin" 2>&1) || {
	# "not a dynamic executable": nothing to copy.
	case "$out" in *"not a dynamic executable"*) exit 0 ;; esac
	echo "$out" >&2
	exit 1
}
if printf '%s\n' "$out" | grep -q 'not found'; then
	printf '%s\n' "$out" >&2
	echo "collect-libs: unresolved libraries for $bin" >&2
	exit 1
fi

printf '%s\n' "$out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
	case "${lib##*/}" in
	libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | ld-linux*) continue ;;
	esac
	cp -L "$lib" "$dest/"
done
