# Shared by the command-line test scripts (sourced, not run): a temporary work directory,
# failure counting, and expect_run. The caller sets nothing; it reads $work and $failures.
# A named template, not an anonymous /tmp/tmp.*: in several landing runs on a shared machine
# that directory vanished mid-run (removed by something outside the suite; cause not found).
work=$(mktemp -d "${TMPDIR:-/tmp}/nabla-cli.XXXXXX")
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect_run CODE REGEX CMD...: run CMD; its exit status must be CODE and its combined
# stdout + stderr (kept in $work/out and $work/err) must match REGEX (grep -E).
expect_run() {
    local code=$1 pattern=$2
    shift 2
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [[ $rc -ne $code ]]; then
        fail "$* exited $rc, expected $code; $(output_tails)"
    # grep reads the files itself: `cat out err | grep -q` under `set -o pipefail` failed when
    # grep quit at an early match while cat still wrote a long progress log (SIGPIPE).
    elif ! grep -Eq -- "$pattern" "$work/out" "$work/err"; then
        fail "$* output does not match /$pattern/; $(output_tails)"
    fi
}

# The ends of the last run's stdout and stderr, for a failure message: the checking scripts
# (check_op_table.sh, check_case_files.sh, check-layers.sh) give their reasons on stdout.
output_tails() {
    echo "stdout: $(tail -c 600 "$work/out")"
    echo "stderr: $(tail -c 400 "$work/err")"
}
