#!/usr/bin/env bash
# tools/test-readme-go.sh: the Go SDK's install and example in docs/sdks.md,
# run exactly as written, from a fresh copy of the tree, against a live
# latchd (make test-readme-go).
#
# The "fresh clone" is a copy of the working tree's tracked and untracked,
# not ignored, files. In the "Go SDK" section of docs/sdks.md (up to the
# next heading of its level or above), in document order: a ```sh block
# runs in the program's directory (a new, empty one) with LATCH_SRC set to
# the copy and LATCH_URL to latchd; a ```go block is saved there as
# main.go. Blocks with any other info string (```go fragment: a piece of
# a program) are not run. The account that the example signs in to,
# ada@example.com, is signed up first. The README's Go example must be one
# of the section's programs, character for character.
#
# Environment: BIN (default bin), GO (default go), SDK_PREBUILT=1 to use
# $BIN/latchd as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

LATCHD_WHO=test-readme-go
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

DOC=docs/sdks.md
SECTION="Go SDK"

# blocks FILE HEADING OUTDIR: writes the fenced blocks of the section
# HEADING of FILE to OUTDIR/NN.INFO (info string, spaces as "_"), in
# order, and prints how many.
blocks() {
	awk -v want="$2" -v out="$3" '
		function flush() { close(file) }
		/^```/ && infence { infence = 0; flush(); next }
		infence { print > file; next }
		/^#+ / {
			level = index($0, " ") - 1
			title = substr($0, level + 2)
			if (insec && level <= seclevel) insec = 0
			if (!insec && title == want) { insec = 1; seclevel = level }
			next
		}
		insec && /^```/ {
			info = substr($0, 4); gsub(/ +/, "_", info)
			n++; file = sprintf("%s/%02d.%s", out, n, info)
			printf "" > file
			infence = 1
		}
		END { print n + 0 }
	' "$1"
}

work="$(mktemp -d "${TMPDIR:-/tmp}/test-readme-go.XXXXXX")"
cleanup() { latchd_stop; rm -rf "$work"; }
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/blocks" "$work/readme" "$work/latch" "$work/hello"
n="$(blocks "$DOC" "$SECTION" "$work/blocks")"
if [ "$n" -eq 0 ] || ! ls "$work/blocks" | grep -q '\.sh$' || ! ls "$work/blocks" | grep -q '\.go$'; then
	latchd_say "no \`\`\`sh and \`\`\`go blocks in the \"$SECTION\" section of $DOC"
	exit 1
fi

# The README's program is one of the section's.
blocks README.md "$SECTION" "$work/readme" >/dev/null
for f in "$work"/readme/*.go; do
	[ -e "$f" ] || continue
	if ! (for g in "$work"/blocks/*.go; do cmp -s "$f" "$g" && exit 0; done; exit 1); then
		latchd_say "README.md's Go example is not one of the programs of $DOC's \"$SECTION\" section; keep them the same"
		exit 1
	fi
done

# The fresh clone: what git would commit, as it is in the working tree.
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -xf - -C "$work/latch"

if [ -z "${SDK_PREBUILT:-}" ]; then latchd_build || exit 1; fi
latchd_start || exit 1
trap cleanup EXIT

node -e '
	fetch(process.argv[1] + "/auth/signup", {
		method: "POST", headers: { "Content-Type": "application/json" },
		body: JSON.stringify({ email: "ada@example.com", password: "correct horse battery staple" }),
	}).then(async (r) => { if (r.status !== 201) { console.error(r.status, await r.text()); process.exit(1); } },
		(e) => { console.error(e); process.exit(1); });
' "$LATCHD_URL"

export LATCH_SRC="$work/latch" LATCH_URL="$LATCHD_URL"
cd "$work/hello"
status=0
for f in "$work"/blocks/*; do
	name="$(basename "$f")"
	case "$name" in
	*.sh)
		latchd_say "$DOC block $name:"
		sed 's/^/  $ /' "$f" >&2
		if ! bash -euo pipefail "$f"; then
			latchd_say "$DOC block $name failed"
			status=1
			break
		fi
		;;
	*.go) cp "$f" main.go ;;
	*) ;; # a fragment
	esac
done
cd "$root"
if [ "$status" -ne 0 ]; then
	latchd_log_tail 30
fi
exit "$status"
