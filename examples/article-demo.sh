#!/bin/sh
# The article's scenario, step by step, with the engines this machine allows.
# Run as root after `python3 -m pip install .`.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
rules="$here/article.rules"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The article's rules one by one (they are separated by blank lines).
awk -v RS= -v dir="$work" '{ print > (dir "/rule" NR ".conf") }' "$rules"

step() { printf '\n== %s\n' "$*"; }

step "sct check $rules"
sct check "$rules"

step "unlink_rule1: touch ./dummy; rm ./dummy (sctrace prints the log line)"
cd "$work"
touch ./dummy
sctrace -c "$work/rule1.conf" -- rm ./dummy

step "prevent_delete, then unlink_rule1: rm -f /etc/passwd fails, nothing is logged"
# In a private mount namespace /etc is a throw-away copy, so the real one is never at risk.
cat "$work/rule2.conf" "$work/rule1.conf" > "$work/fail-first.conf"
cat "$work/rule1.conf" "$work/rule2.conf" > "$work/log-first.conf"
cp -a /etc "$work/etc"
unshare --mount --propagation private sh -c "
  mount --bind '$work/etc' /etc
  sctrace -c '$work/fail-first.conf' -- rm -f /etc/passwd || true
  ls -l /etc/passwd
  echo
  echo '== swapped (unlink_rule1 first): the log line, and the deletion goes ahead'
  sctrace -c '$work/log-first.conf' -- rm -f /etc/passwd
  ls -l /etc/passwd 2>&1 || true
"
ls -l /etc/passwd

step "ptrace_rule1: strace /bin/ls under sctrace logs strace's ptrace calls"
sctrace -c "$work/rule3.conf" -- strace -o /dev/null /bin/ls >/dev/null 2>"$work/ptrace.log" || true
grep -F 'issued ptrace' "$work/ptrace.log" | head -6
