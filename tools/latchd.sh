# shellcheck shell=bash
# tools/latchd.sh: build latchd and run it on a free loopback port with a
# fresh SQLite database, for the end-to-end checks (tools/test-postman.sh,
# tools/test-browser.sh). Source it, then:
#
#   latchd_build            build $BIN/latchd (BIN defaults to bin, GO to go)
#   latchd_start            start it; sets LATCHD_URL and LATCHD_LOG
#   latchd_stop             stop it and remove its temp dir (safe to call twice)
#   latchd_log_tail [N]     print the last N lines of its log
#
# latchd_start installs an EXIT trap that calls latchd_stop, so a failing
# script does not leave a server behind. Messages start with "$LATCHD_WHO:".

: "${BIN:=bin}"
: "${GO:=go}"
: "${LATCHD_WHO:=latchd}"
: "${LATCHD_START_TIMEOUT:=60}"

LATCHD_PID=""
LATCHD_TMP=""
LATCHD_URL=""
LATCHD_LOG=""

latchd_say() { printf '%s: %s\n' "$LATCHD_WHO" "$*" >&2; }

# latchd_chromium makes sure $CHROMIUM (default /usr/bin/chromium) can run:
# Debian's chromium is installed when it is missing (apt-get waits up to 10
# minutes for another apt-get's lock). Returns 1, having said why, when it
# cannot be.
latchd_chromium() {
	CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
	[ -x "$CHROMIUM" ] && return 0
	if [ "$CHROMIUM" != /usr/bin/chromium ]; then
		latchd_say "$CHROMIUM is not an executable"
		return 1
	fi
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null; then
			sudo="sudo"
		else
			latchd_say "/usr/bin/chromium is missing and installing it needs root: apt-get install -y chromium"
			return 1
		fi
	fi
	latchd_say "installing Debian's chromium"
	if ! { $sudo apt-get -o DPkg::Lock::Timeout=600 update && DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y chromium; }; then
		latchd_say "could not install chromium with apt-get"
		return 1
	fi
}

latchd_build() {
	if [ ! -d cmd/latchd ]; then
		latchd_say "cannot build latchd: ./cmd/latchd does not exist yet"
		return 1
	fi
	latchd_say "building $BIN/latchd"
	if ! "$GO" build -o "$BIN/latchd" ./cmd/latchd; then
		latchd_say "cannot build latchd: 'go build -o $BIN/latchd ./cmd/latchd' failed (see above)"
		return 1
	fi
}

# latchd_free_port prints a TCP port that was free on 127.0.0.1 a moment ago.
latchd_free_port() {
	node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

latchd_log_tail() {
	if [ -n "$LATCHD_LOG" ] && [ -s "$LATCHD_LOG" ]; then
		latchd_say "last ${1:-40} lines of the latchd log:"
		tail -n "${1:-40}" "$LATCHD_LOG" >&2
	fi
}

latchd_stop() {
	if [ -n "$LATCHD_PID" ] && kill -0 "$LATCHD_PID" 2>/dev/null; then
		kill -TERM "$LATCHD_PID" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$LATCHD_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$LATCHD_PID" 2>/dev/null; then
			latchd_say "latchd did not stop within 5s of SIGTERM; killing it"
			kill -KILL "$LATCHD_PID" 2>/dev/null || true
		fi
		wait "$LATCHD_PID" 2>/dev/null || true
	fi
	LATCHD_PID=""
	if [ -n "$LATCHD_TMP" ]; then
		rm -rf "$LATCHD_TMP"
		LATCHD_TMP=""
	fi
}

latchd_start() {
	local port
	LATCHD_TMP="$(mktemp -d "${TMPDIR:-/tmp}/latchd.XXXXXX")"
	trap latchd_stop EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	LATCHD_LOG="$LATCHD_TMP/latchd.log"
	port="$(latchd_free_port)" || { latchd_say "cannot find a free port"; return 1; }
	LATCHD_URL="http://127.0.0.1:$port"

	# A small argon2 cost and no rate limits: the checks sign up, log in and
	# fail to log in many times in a few seconds.
	LATCH_ADDR="127.0.0.1:$port" \
	LATCH_DATABASE_URL="sqlite://$LATCHD_TMP/latch.db" \
	LATCH_ARGON2_MEMORY_KIB=1024 \
	LATCH_ARGON2_TIME=1 \
	LATCH_ALLOW_WEAK_HASHING=true \
	LATCH_AUTOCONFIRM_EMAIL=true \
	LATCH_RATE_LIMITS=false \
		"$BIN/latchd" serve >"$LATCHD_LOG" 2>&1 &
	LATCHD_PID=$!

	local deadline=$((SECONDS + LATCHD_START_TIMEOUT))
	while :; do
		if ! kill -0 "$LATCHD_PID" 2>/dev/null; then
			wait "$LATCHD_PID" 2>/dev/null
			latchd_say "latchd exited (status $?) before answering GET /health"
			LATCHD_PID=""
			latchd_log_tail
			return 1
		fi
		if node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1));' "$LATCHD_URL/health"; then
			break
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			latchd_say "latchd did not answer GET /health with 200 within ${LATCHD_START_TIMEOUT}s"
			latchd_log_tail
			return 1
		fi
		sleep 0.2
	done
	latchd_say "latchd is up at $LATCHD_URL (database in $LATCHD_TMP)"
}
