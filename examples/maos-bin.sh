# Sourced by the example scripts (needs `root`, the repository's top directory, and `example`,
# the script's name for messages): sets MAOS_BIN to the maos binary, building it in release mode
# when MAOS_BIN is not set already.

if [[ -z ${MAOS_BIN:-} ]]; then
    echo "building maos: cargo build --release -p maos" >&2
    (cd "$root" && cargo build --release --quiet -p maos)
    target_dir=${CARGO_TARGET_DIR:-target}
    [[ $target_dir == /* ]] || target_dir="$root/$target_dir"
    MAOS_BIN="$target_dir/release/maos"
fi
if [[ ! -x $MAOS_BIN ]]; then
    echo "$example: no maos binary at $MAOS_BIN (set MAOS_BIN to one)" >&2
    exit 1
fi
