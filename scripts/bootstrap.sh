#!/usr/bin/env bash
# bootstrap.sh - install the system packages memfd-luo needs, if missing.
#
# As root: installs the missing Debian packages with apt-get.
# Otherwise: names the exact packages to install and exits non-zero.
# Usage: scripts/bootstrap.sh [--check]
set -euo pipefail

# command-or-file probe : debian package
needs=(
	"qemu-system-x86_64:qemu-system-x86"
	"gcc:build-essential"
	"make:build-essential"
	"flex:flex"
	"bison:bison"
	"bc:bc"
	"cpio:cpio"
	"xz:xz-utils"
	"kexec:kexec-tools"
	"git:git"
	"perl:perl"
	"/usr/include/libelf.h:libelf-dev"
	"/usr/include/openssl/ssl.h:libssl-dev"
	"/usr/include/gelf.h:libelf-dev"
	"apt-get:apt"
)

missing=()
for n in "${needs[@]}"; do
	probe=${n%%:*}
	pkg=${n#*:}
	if [[ $probe == /* ]]; then
		[[ -e $probe ]] && continue
	else
		command -v "$probe" >/dev/null 2>&1 && continue
	fi
	[[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ ${1-} == --check ]]; then
	echo "memfd-luo: missing packages: ${missing[*]}" >&2
	exit 1
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "memfd-luo: missing system packages: ${missing[*]}" >&2
	echo "memfd-luo: install them with: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "memfd-luo: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >&2; then
	echo "memfd-luo: apt-get update failed; is the package mirror reachable?" >&2
	exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
	echo "memfd-luo: apt-get install ${missing[*]} failed" >&2
	exit 1
fi
