#!/bin/bash
# CI: build the libFuzzer harnesses (tests/fuzz, meson -Dfuzz=true, clang with
# ASan + UBSan) in their own build folder and run each for a bounded time
# from its seed corpus. Any crash, leak, sanitizer report, timeout or single
# allocation above 256 MB fails the step. docs/FUZZING.md: longer runs.
#
# Memory: ASan keeps freed blocks in a quarantine (256 MB by default) to catch
# use-after-free, and that quarantine counts toward the process RSS; with
# -rss_limit_mb=256 a long run of harmless inputs trips the limit (CI stop 16:
# "out-of-memory" on an empty input with 24 MB live and 260 MB quarantined).
# So the quarantine is capped at 32 MB, one allocation is limited to 256 MB
# (-malloc_limit_mb, what a hostile input could make us ask for), and the
# whole process to 768 MB (a real leak or runaway still ends the run).
set -uo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
# targets x SECONDS_EACH <= 300: the whole step stays within 5 minutes
SECONDS_EACH=${FUZZ_SECONDS:-30}
TARGETS="pth pickle safetensors png jpeg npy json evalshard dataset_index run_state"

if ! command -v clang >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends clang libclang-rt-dev >/dev/null ||
        { echo "fuzz: cannot install clang / libclang-rt-dev"; exit 1; }
fi
rm -rf build-fuzz
CC=clang meson setup build-fuzz -Dfuzz=true -Dviewer=disabled -Dbuildtype=debugoptimized >/dev/null ||
    { echo "fuzz: meson setup failed"; exit 1; }
ninja -C build-fuzz $(for t in $TARGETS; do printf 'tests/fuzz/fuzz_%s ' "$t"; done) >/dev/null ||
    { echo "fuzz: build failed"; exit 1; }

status=0
work=$(mktemp -d)
for t in $TARGETS; do
    mkdir -p "$work/$t"
    # the seed corpus is read-only input; new inputs go to $work/$t
    if ASAN_OPTIONS=quarantine_size_mb=32:detect_leaks=1 \
       build-fuzz/tests/fuzz/fuzz_$t -rss_limit_mb=768 -malloc_limit_mb=256 -timeout=10 -max_total_time="$SECONDS_EACH" \
            -print_final_stats=1 -artifact_prefix="$work/$t-" "$work/$t" "tests/fuzz/corpus/$t" \
            >"$work/$t.log" 2>&1; then
        echo "fuzz_$t: clean ($(grep -o 'Done [0-9]* runs' "$work/$t.log"))"
    else
        echo "fuzz_$t: FINDING"
        grep -A25 -m1 'ERROR\|==[0-9]*==' "$work/$t.log" | head -40
        ls "$work/$t-"* 2>/dev/null
        status=1
    fi
done
rm -rf "$work"
exit $status
