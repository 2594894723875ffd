#!/bin/sh
# The article's walkthrough, command by command, on this machine. Run as root
# after `python3 -m pip install .`:
#   1. system-wide: sct_load, sct_config upload, sctlog, download, delete, sct_unload;
#   2. the FAIL rule, which this kernel cannot enforce system-wide, through sctrace.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# The article runs `strace /bin/ls` to show the ptrace rule.
command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace; }
work=$(mktemp -d)
sctlog_pid=
cleanup() {
    [ -n "$sctlog_pid" ] && kill "$sctlog_pid" 2>/dev/null
    sct_unload --force >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
# The article's rules one by one (they are separated by blank lines).
awk -v RS= -v dir="$work" '{ print > (dir "/rule" NR ".conf") }' "$here/article.rules"
cp "$work/rule1.conf" /tmp/try.conf

say() { printf '\n# %s\n' "$*"; }

say "sct_load"
sct_load

say "sct_config upload /tmp/try.conf      (unlink_rule1)"
sct_config upload /tmp/try.conf

say "sctlog   (in the background), then in another process: cd /tmp; touch ./dummy; rm ./dummy"
sctlog > "$work/sctlog.out" &
sctlog_pid=$!
sleep 1
(cd /tmp && touch ./dummy && rm ./dummy)
sleep 1
grep -F '"rm" : "./dummy"' "$work/sctlog.out"

say "sct_config download"
sct_config download

say "sct_config delete; sct_config upload /tmp/try.conf   (with prevent_delete added)"
cat "$work/rule2.conf" "$work/rule1.conf" > /tmp/try.conf
sct_config delete
sct_config upload /tmp/try.conf || echo "(refused: nothing changed)"

say "the ptrace rule: sct_config upload, then strace /bin/ls"
cat "$work/rule1.conf" "$work/rule3.conf" > /tmp/try.conf
sct_config upload /tmp/try.conf
strace -o /dev/null /bin/ls >/dev/null
sleep 1
grep -F '"strace" :' "$work/sctlog.out" | head -6

say "sct_unload   (refused while rules are loaded, as in the article)"
sct_unload || true
sct_config delete
sct_unload
kill "$sctlog_pid" 2>/dev/null || true
sctlog_pid=

say "prevent_delete through sctrace: rm -f /etc/passwd fails (on a throw-away copy of /etc)"
cat "$work/rule2.conf" "$work/rule1.conf" > "$work/fail-first.conf"
cat "$work/rule1.conf" "$work/rule2.conf" > "$work/log-first.conf"
cp -a /etc "$work/etc"
unshare --mount --propagation private sh -c "
  mount --bind '$work/etc' /etc
  sctrace -c '$work/fail-first.conf' -- rm -f /etc/passwd || true
  ls -l /etc/passwd
  echo
  echo '# swapped (unlink_rule1 first): the log line, and the deletion goes ahead'
  sctrace -c '$work/log-first.conf' -- rm -f /etc/passwd 2>&1
  ls -l /etc/passwd 2>&1 || true
"
say "the real /etc/passwd was never touched"
ls -l /etc/passwd
