#!/bin/sh
# Run hugerace in KTAP form and report each result line as one LAVA test case, with the name
# and result a `monitors` action gives the same line (lava/hugerace-initramfs.yaml):
#   ok 1 shared 2M                -> lava-test-case shared_2m --result pass
#   not ok 2 private 2M           -> lava-test-case private_2m --result fail
#   ok 3 shared 16G # SKIP ...    -> lava-test-case shared_16g --result skip
# The run steps of lava/hugerace-ktap.yaml (LAVA's test shell) call it; any POSIX sh serves
# (busybox's too). Its environment, the definition's params:
#   HUGERACE      the binary [hugerace, from PATH]
#   HUGERACE_URL  if set, the static binary is fetched from there first (wget or curl)
#   ARGS          hugerace's arguments [-s all -i 100]; `-f ktap` is added
# Exits 0 when it could report (the verdicts are the cases'); if hugerace printed no result
# line at all (not found, killed), one case `hugerace` fails, so that nothing passes silently.
# Outside LAVA, LAVA_TEST_CASE names another reporter (the self-test's).

bin=${HUGERACE:-hugerace}
report=${LAVA_TEST_CASE:-lava-test-case}
if [ -n "${HUGERACE_URL:-}" ]; then
    bin=./hugerace
    wget -q -O "$bin" "$HUGERACE_URL" 2>/dev/null || curl -fsSL -o "$bin" "$HUGERACE_URL" ||
        echo "hugerace-ktap: cannot fetch $HUGERACE_URL"
    chmod +x "$bin" 2>/dev/null
fi

out=${TMPDIR:-/tmp}/hugerace-ktap.$$
# shellcheck disable=SC2086  # ARGS is a word list on purpose
"$bin" -f ktap ${ARGS:--s all -i 100} >"$out"
status=$?
cat "$out"
echo "hugerace: exit $status"

cases=0
while IFS= read -r line; do
    case $line in
        "not ok "*) result=fail rest=${line#not ok } ;;
        "ok "*) result=pass rest=${line#ok } ;;
        *) continue ;;
    esac
    case ${rest%% *} in '' | *[!0-9]*) continue ;; esac   # the test number
    rest=${rest#* }
    case $rest in *" # SKIP"*) result=skip rest=${rest%% # SKIP*} ;; esac
    # As LAVA makes a monitor's case id: lowercase, each run of non-word characters one `_`.
    name=$(printf '%s' "$rest" | sed 's/[[:space:]]*$//' | tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9_]\{1,\}/_/g')
    [ -n "$name" ] || continue
    "$report" "$name" --result "$result"
    cases=$((cases + 1))
done <"$out"
rm -f "$out"
[ "$cases" -gt 0 ] || "$report" hugerace --result fail
exit 0
