#!/usr/bin/env bash
# The layering rules of ARCHITECTURE.md §2, checked by grep (run by scripts/test.sh):
# core never uses the async runtime or another layer; io never imports app; api sees only
# app::control; no source file grows past 650 lines.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
say() { echo "layering: $*" >&2; fail=1; }

if grep -rn 'tokio' src/core; then say "src/core must not use tokio"; fi
if grep -rnE '^[^/]*crate::(io|app|api|config)\b' src/core; then say "src/core imports another layer"; fi
if grep -rnE '^[^/]*crate::app\b' src/io; then say "src/io imports app"; fi
if grep -rnE 'crate::app\b' src/api | grep -v 'crate::app::control'; then
  say "src/api may import only app::control"
fi
while read -r lines file; do
  [ "$file" = total ] && continue
  if [ "$lines" -gt 650 ]; then say "$file has $lines lines (split it)"; fi
done < <(find src tests -name '*.rs' -print0 | xargs -0 wc -l)
exit $fail
