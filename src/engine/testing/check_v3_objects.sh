#!/bin/bash
# The x86-64-v3 copy of error diffusion (src/engine/isa.h) must keep its instructions to itself.
# Its objects are compiled inside `#pragma GCC target("arch=x86-64-v3")`; any function they
# define with external linkage (an inline function or template instantiation the linker may keep
# for every caller, on any CPU) other than their entry points must hold no instruction beyond
# the build's own set. The objects must hold some (else the attribute did nothing). An object
# that defines nothing of external linkage is a build without the copy
# (src/engine/isa_config.h).
# Usage: check_v3_objects.sh OBJECT...   (ctest engine_v3_objects)
set -euo pipefail

entries='^dither::engine::detail::error_diffusion(_rgba)?_v3\('
# VEX-encoded (AVX, AVX2, FMA, F16C) or BMI1/BMI2/LZCNT/MOVBE instructions, as objdump prints them.
v3_insn='^[[:space:]]*[0-9a-f]+:[[:space:]]+(v[a-z0-9]+|andn|bextr|blsi|blsmsk|blsr|bzhi|lzcnt|movbe|mulx|pdep|pext|rorx|sarx|shlx|shrx|tzcnt)[[:space:]]'
status=0
(($# > 0)) || { echo "usage: $0 OBJECT..." >&2; exit 2; }
for obj in "$@"; do
  [[ -f $obj ]] || { echo "$obj: no such object" >&2; exit 2; }
  symbols=$(nm --defined-only --demangle "$obj")
  # Defined symbols with external linkage (global, weak or unique), demangled.
  mapfile -t shared < <(awk '$2 ~ /^[TWVu]$/ { $1 = ""; $2 = ""; sub(/^  /, ""); print }' \
    <<<"$symbols")
  if ((${#shared[@]} == 0)); then
    # Nothing another object could call (a sanitizer's constructor at most).
    echo "$obj: no code of its own (this build has no x86-64-v3 copy)"
    continue
  fi
  # Function name -> number of x86-64-v3 instructions in it.
  counts=$(objdump -d --no-show-raw-insn --demangle "$obj" | awk -v pat="$v3_insn" '
      /^[0-9a-f]+ <.*>:$/ { name = $0; sub(/^[0-9a-f]+ </, "", name); sub(/>:$/, "", name);
                            n[name] += 0; next }
      $0 ~ pat { n[name]++ }
      END { for (f in n) print n[f] "\t" f }')
  total=$(awk -F'\t' '{ s += $1 } END { print s + 0 }' <<<"$counts")
  if ((total == 0)); then
    echo "$obj: no x86-64-v3 instruction at all: is the target attribute in force?"
    status=1
  fi
  entry_found=0
  for fn in "${shared[@]}"; do
    count=$(awk -F'\t' -v f="$fn" '$2 == f { print $1 }' <<<"$counts")
    count=${count:-0}
    if [[ $fn =~ $entries ]]; then
      entry_found=1
    elif ((count > 0)); then
      echo "$obj: $fn has external linkage and $count x86-64-v3 instructions"
      status=1
    fi
  done
  if ((entry_found == 0)); then
    echo "$obj: no entry point (error_diffusion_v3 or error_diffusion_rgba_v3) among: ${shared[*]}"
    status=1
  fi
done
((status == 0)) && echo "x86-64-v3 objects: no function shared with the rest uses x86-64-v3"
exit "$status"
