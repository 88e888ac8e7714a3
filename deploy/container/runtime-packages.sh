#!/bin/bash
# Prints the Debian packages that hold the shared libraries the given programs load directly (their
# ELF NEEDED entries), one a line: what the runtime image must install; apt adds those libraries'
# own dependencies. Runs where the programs were built (the builder stage, or a bookworm host).
#   deploy/container/runtime-packages.sh PROGRAM...
set -euo pipefail

# owner PATH: the package that installed PATH. With merged /usr a library is registered under
# /lib or /usr/lib, whichever its package names, and either may be a symbolic link.
owner() {
  local candidate found
  for candidate in "$1" "${1#/usr}" "/usr$1" "$(readlink -f "$1")"; do
    if found=$(dpkg -S "$candidate" 2>/dev/null) && [[ -n $found ]]; then
      echo "${found%%: *}"
      return 0
    fi
  done
  echo "runtime-packages: no installed package holds $1" >&2
  return 1
}

for program in "$@"; do
  needed=$(readelf -d "$program" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  # libvips is loaded when first used (src/imaging/vips_lazy.h), not NEEDED: its name is in the
  # program, its path in the dynamic linker's cache.
  while read -r loaded; do
    path=$(ldconfig -p | awk -v name="$loaded" '$1 == name { print $NF; exit }')
    if [[ -z $path ]]; then
      echo "runtime-packages: $program loads $loaded, which the dynamic linker cannot find" >&2
      exit 1
    fi
    owner "$path"
  done < <(grep -aoE 'libvips\.so\.[0-9]+' "$program" | sort -u)
  # ldd resolves each name for the program's own architecture.
  while read -r soname path; do
    if grep -qxF "$soname" <<<"$needed"; then owner "$path"; fi
  done < <(ldd "$program" | awk '$2 == "=>" { print $1, $3 }')
done | tr ',' '\n' | sed 's/^ *//; s/:.*//' | sort -u
