#!/usr/bin/env bash
# tools/test-readme-py.sh: runs sdk/python/README.md as a newcomer would
# (make test-readme-py; also run by tools/test-sdk-long.sh).
#
# Starts latchd (tools/latchd.sh), copies the working tree as a fresh clone
# would have it (the files git tracks plus untracked files it does not
# ignore, so uncommitted work is tested; never .venv) into a temp dir, and
# there runs the README's fenced blocks in order, in one bash, exactly as
# written:
#
#   ```sh               run as shell commands (the install: venv, pip)
#   ```python           written to a file and run with `python FILE`
#                       (the venv's python, once the install activated it)
#   ```python fragment  part of a program, not a program: only compiled
#   ```text             not run
#
# Any other info string fails the check, so a new block is classified.
# LATCH_URL points at latchd and HOME at an empty temp dir (the example's
# FileStore("~/...") writes there).
#
# Environment: BIN (default bin), GO (default go), SDK_PREBUILT=1 to use
# $BIN/latchd as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

LATCHD_WHO=test-readme-py
# shellcheck source=tools/latchd.sh
. tools/latchd.sh

if [ -z "${SDK_PREBUILT:-}" ]; then latchd_build || exit 1; fi
latchd_start || exit 1
WORK="$(mktemp -d "${TMPDIR:-/tmp}/readme-py.XXXXXX")"
cleanup() { rm -rf "$WORK"; latchd_stop; }
trap cleanup EXIT

latchd_say "copying the working tree to $WORK/clone"
mkdir -p "$WORK/clone" "$WORK/home" "$WORK/blocks"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do
		case "$f" in .venv/* | */__pycache__/*) continue ;; esac
		[ -e "$f" ] && printf '%s\0' "$f"
	done |
	tar --null -T - -cf - | tar -xf - -C "$WORK/clone"

# The README's blocks, in order, as one bash script.
python3 - "$WORK/clone/sdk/python/README.md" "$WORK/blocks" >"$WORK/run.sh" <<'EOF'
import os, re, shlex, sys

readme, blocks = sys.argv[1], sys.argv[2]
text = open(readme, encoding="utf-8").read()
out = ["set -euo pipefail"]
counts = {"sh": 0, "python": 0, "python fragment": 0, "text": 0}
for n, mo in enumerate(re.finditer(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", text, re.M | re.S)):
    info, body = mo.group(1).strip(), mo.group(2)
    line = text.count("\n", 0, mo.start()) + 1
    if info not in counts:
        sys.exit(f"test-readme-py: README.md line {line}: a block with info string {info!r}; use sh, python, 'python fragment' or text")
    counts[info] += 1
    say = f"echo {shlex.quote(f'test-readme-py: README.md line {line}: ```{info}')} >&2"
    if info == "sh":
        out += [say, body]
    elif info in ("python", "python fragment"):
        path = os.path.join(blocks, f"block{n}.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(body)
        out += [say, f"python {shlex.quote(path)}" if info == "python" else f"python3 -m py_compile {shlex.quote(path)}"]
if not counts["sh"] or not counts["python"]:
    sys.exit(f"test-readme-py: README.md has no sh or no python block to run: {counts}")
print("\n".join(out))
print(f"test-readme-py: {counts}", file=sys.stderr)
EOF

latchd_say "running the README's blocks in $WORK/clone"
status=0
(cd "$WORK/clone" && HOME="$WORK/home" LATCH_URL="$LATCHD_URL" bash "$WORK/run.sh") || status=1
if [ "$status" -ne 0 ]; then
	latchd_say "FAIL: sdk/python/README.md as written"
	latchd_log_tail 20
else
	latchd_say "pass: sdk/python/README.md as written"
fi
exit "$status"
