#!/usr/bin/env bash
# Lists what sits in the system's Python outside Debian's packages: each
# entry of the system's site directories (dist-packages and site-packages
# under /usr and /usr/local, the user's site directory, and those of the
# python3 first on PATH if it is another one) that no Debian package owns.
# .ci/run compares the listing before and after the run: the project's
# Python tools go into its own virtual environment (target/test-env), never
# into the system's Python.
set -euo pipefail
shopt -s nullglob
dirs=(/usr/lib/python3*/dist-packages /usr/lib/python3*/site-packages
  /usr/local/lib/python3*/dist-packages /usr/local/lib/python3*/site-packages
  "$HOME"/.local/lib/python3*/site-packages)
if command -v python3 >/dev/null; then
  while read -r dir; do dirs+=("$dir"); done < <(python3 -c \
    'import site; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null || true)
fi
entries=()
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  for entry in "$dir"/*; do
    [ "${entry##*/}" = __pycache__ ] || entries+=("$entry")
  done
done
[ ${#entries[@]} -eq 0 ] && exit 0
owned=
if command -v dpkg-query >/dev/null; then
  # "package[, package]: /path" for each entry a package owns.
  owned=$(dpkg-query -S "${entries[@]}" 2>/dev/null | sed -n 's/^[^:]*: \(\/.*\)$/\1/p' || true)
fi
printf '%s\n' "${entries[@]}" | sort -u | grep -vxF -f <(printf '%s\n' "$owned") || true
