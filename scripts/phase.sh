# Phase lines for `npm test` and `npm start` (sourced): "<prefix>: <phase> …" when a phase begins,
# "<prefix>: <phase> done in 12.3 s" (or "failed after …") when it ends, on stderr. While a phase
# runs, its elapsed time: redrawn in place on a terminal, a plain line every $PHASE_TICK seconds
# (default 10) elsewhere, so logs (CI=true, a pipe) hold no carriage returns. The same lines as
# lib/app/progress.ts prints for the phases inside `npm start`.
PHASE_PREFIX="${PHASE_PREFIX:-npm}"
_phase_name=""
_phase_started=0
_phase_ticker=""

# Milliseconds since the epoch (bash 5's $EPOCHREALTIME, without forking).
_phase_now_ms() { local t="${EPOCHREALTIME/[.,]/}"; echo $((t / 1000)); }
# "12.3 s" for a number of milliseconds.
_phase_format() { printf '%d.%d s' $(($1 / 1000)) $(($1 % 1000 / 100)); }
# True where progress may be animated: stderr is a terminal and $CI is unset (or false).
_phase_interactive() { [ -t 2 ] && { [ -z "${CI:-}" ] || [ "${CI}" = false ] || [ "${CI}" = 0 ]; }; }

# phase_begin NAME [--no-ticker]: prints the phase's first line and starts its elapsed-time ticker
# (--no-ticker where the command shows its own progress, as jest does).
phase_begin() {
  _phase_name="$1"
  _phase_started="$(_phase_now_ms)"
  echo "$PHASE_PREFIX: $_phase_name …" >&2
  _phase_ticker=""
  if [ "${2:-}" = --no-ticker ]; then return 0; fi
  local tick="${PHASE_TICK:-10}" animate=0 parent=$$
  if _phase_interactive; then animate=1; tick=1; fi
  (
    trap - EXIT
    waited=0
    # Ends with the script even when the script ends without phase_end (set -e, exit).
    while kill -0 "$parent" 2>/dev/null; do
      sleep 1
      waited=$((waited + 1))
      [ $((waited % tick)) -eq 0 ] || continue
      line="$PHASE_PREFIX: $_phase_name $(_phase_format $(($(_phase_now_ms) - _phase_started)))"
      if [ "$animate" = 1 ]; then printf '\r\033[K%s' "$line" >&2; else echo "$line" >&2; fi
    done
  ) &
  _phase_ticker=$!
}

# phase_end [STATUS]: stops the ticker and prints "done in …" (STATUS 0 or none) or "failed after …".
phase_end() {
  local status="${1:-0}" elapsed
  if [ -n "$_phase_ticker" ]; then
    kill "$_phase_ticker" 2>/dev/null || true
    wait "$_phase_ticker" 2>/dev/null || true
    _phase_ticker=""
    if _phase_interactive; then printf '\r\033[K' >&2; fi
  fi
  elapsed="$(_phase_format $(($(_phase_now_ms) - _phase_started)))"
  if [ "$status" -eq 0 ]; then echo "$PHASE_PREFIX: $_phase_name done in $elapsed" >&2
  else echo "$PHASE_PREFIX: $_phase_name failed after $elapsed" >&2; fi
}

# phase NAME COMMAND…: runs COMMAND as one phase; returns its exit status.
phase() {
  local name="$1" status=0
  shift
  phase_begin "$name"
  "$@" || status=$?
  phase_end "$status"
  return "$status"
}
