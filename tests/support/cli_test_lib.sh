# Shared by the shell tests of the `weir` command line: sourced, not run.
# Checks record failures and go on, so that one run reports every broken promise.

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
expect_status() {  # expected actual what
  [ "$1" = "$2" ] || fail "$3: exit status $2, expected $1"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# GET PATH from 127.0.0.1:PORT over bash's /dev/tcp (no HTTP client needed);
# prints the whole answer: status line, headers, body.
http_get() {  # port path
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
  timeout 10 cat <&3
  exec 3<&-
}
# Exits 1 with the count when a check failed, else prints "ok: WHAT".
finish() {  # what
  if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "ok: $1"
}
