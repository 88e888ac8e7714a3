#!/bin/bash
# The x86-64-v3 copies (src/engine/isa.h) must keep their instructions to themselves. Their
# objects compile error_diffusion_impl.h (DITHER_ED_TARGET) or src/imaging/jpeg_ac_scans.h
# (DITHER_AC_TARGET) with GCC's target attribute for x86-64-v3 on every function (all of internal
# linkage). Anything they define with external linkage (an inline function or template
# instantiation that the linker may keep for every caller, on any CPU) other than their entry
# points must hold no instruction beyond the build's own set, and the objects must hold some
# (else the attribute did nothing).
# Usage: check_v3_objects.sh --expect-copy|--expect-none OBJECT...   (ctest engine_v3_objects and
# imaging_v3_objects; --expect-none: a build without the copies, whose objects define nothing of
# external linkage)
set -euo pipefail

usage() {
  echo "usage: $0 --expect-copy [--needs INSTRUCTION]|--expect-none OBJECT..." >&2
  exit 2
}
(($# >= 2)) || usage
expect=$1
shift
[[ $expect == --expect-copy || $expect == --expect-none ]] || usage
# --needs: an instruction the objects must hold (the JPEG copy's pdep, its reason to exist).
needs=
if [[ ${1:-} == --needs ]]; then
  (($# >= 3)) || usage
  needs=$2
  shift 2
fi

# The entry points. Error diffusion's run only where active_isa() chose the copy, so they may hold
# x86-64-v3 instructions; the JPEG AC decoding's hands out its copy's function addresses and is
# called on every CPU (AcDecoder::uses_x86_64_v3()), so it must hold none.
entries='^dither::engine::detail::error_diffusion(_rgba)?_v3\('
portable_entries='^dither::imaging::internal::AcDecoder::scans_x86_64_v3\('
# VEX-encoded (AVX, AVX2, FMA, F16C) and BMI1/BMI2/LZCNT/MOVBE instructions as objdump names
# them (after a tab; some, such as vzeroupper, end the line). Not tzcnt: the build's own code
# may hold `rep bsf`, which objdump shows as tzcnt.
v3_insn='^[[:space:]]*[0-9a-f]+:[[:space:]]+(v[a-z0-9]+|andn|bextr|blsi|blsmsk|blsr|bzhi|lzcnt|movbe|mulx|pdep|pext|rorx|sarx|shlx|shrx)([[:space:]]|$)'
status=0
for obj in "$@"; do
  [[ -f $obj ]] || { echo "$obj: no such object" >&2; exit 2; }
  # Defined symbols with external linkage (global, weak or unique), demangled. (nm apart, so
  # that its failure stops the script.)
  symbols=$(nm --defined-only --demangle "$obj")
  mapfile -t shared < <(awk '$2 ~ /^[TWVu]$/ { $1 = ""; $2 = ""; sub(/^  /, ""); print }' \
    <<<"$symbols")
  if [[ $expect == --expect-none ]]; then
    # Nothing another object could call (a sanitizer's constructor at most).
    if ((${#shared[@]} > 0)); then
      echo "$obj: this build should have no x86-64-v3 copy, but the object defines: ${shared[*]}"
      status=1
    fi
    continue
  fi
  # Function name -> number of x86-64-v3 instructions in it; a part GCC split off a function
  # (" [clone .cold]") counts as the function's own.
  disassembly=$(objdump -d --no-show-raw-insn --demangle "$obj")
  counts=$(awk -v pat="$v3_insn" '
      /^[0-9a-f]+ <.*>:$/ { name = $0; sub(/^[0-9a-f]+ </, "", name); sub(/>:$/, "", name);
                            sub(/ \[clone \.cold\]$/, "", name); n[name] += 0; next }
      $0 ~ pat { n[name]++ }
      END { for (f in n) print n[f] "\t" f }' <<<"$disassembly")
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
    elif [[ $fn =~ $portable_entries ]]; then
      entry_found=1
      if ((count > 0)); then
        echo "$obj: $fn runs on every CPU but holds $count x86-64-v3 instructions"
        status=1
      fi
    elif ((count > 0)); then
      echo "$obj: $fn has external linkage and $count x86-64-v3 instructions"
      status=1
    fi
  done
  # (From a variable, not a pipe: grep -q stops reading at the first match, and objdump's SIGPIPE
  # would fail the pipeline under pipefail.)
  if [[ -n $needs ]] &&
    ! grep -Eq "^[[:space:]]*[0-9a-f]+:[[:space:]]+$needs([[:space:]]|$)" <<<"$disassembly"; then
    echo "$obj: no $needs instruction: the copy lost what it is for"
    status=1
  fi
  if ((entry_found == 0)); then
    echo "$obj: no entry point (error_diffusion_v3, error_diffusion_rgba_v3 or scans_x86_64_v3) among: ${shared[*]}"
    status=1
  fi
done
if ((status == 0)); then
  if [[ $expect == --expect-copy ]]; then
    echo "x86-64-v3 objects: no function shared with other code uses x86-64-v3"
  else
    echo "no x86-64-v3 copy in this build, as expected"
  fi
fi
exit "$status"
