# Sourced by the other scripts: run pip quietly, show its log only if it fails.
pip_quiet() {
    local py="$1"; shift
    local log
    log="$(mktemp)"
    if ! "$py" -m pip install --quiet "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "pip install $* failed" >&2
        return 1
    fi
    rm -f "$log"
}
