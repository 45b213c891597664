#!/usr/bin/env bash
# Put a yolox_edge bundle (ncnn FP32 or INT8) into the app's assets, after checking it.
#
#   ./prepare_assets.sh BUNDLE.zip [NAME]
#
# The bundle lands in app/src/main/assets/bundles/NAME/ (NAME defaults to the zip's name);
# the app lists every bundle found there. Checks: with the yolox-edge SDK installed,
# `yolox-edge verify --extract` (zip slip, sizes, sha256 of every file, metadata); without
# it, the same essentials with unzip + sha256sum. The app re-checks each model file's
# sha256 against metadata.json before ncnn loads it.
set -euo pipefail

die() { echo "prepare_assets.sh: error: $*" >&2; exit 2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 BUNDLE.zip [NAME]"
bundle=$1
[ -f "$bundle" ] || die "$bundle: bundle not found; make one with 'yolox-edge package EXPORT --target ncnn --out NAME.zip'"
name=${2:-$(basename "$bundle" .zip)}
[[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "bundle name '$name': use letters, digits, '.', '_' or '-'"

here=$(cd "$(dirname "$0")" && pwd)
assets="$here/app/src/main/assets/bundles"
mkdir -p "$assets"
tmp=$(mktemp -d "$assets/.incoming.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if command -v yolox-edge >/dev/null 2>&1; then
    yolox-edge verify "$bundle" --extract "$tmp/b" >/dev/null
else
    command -v unzip >/dev/null && command -v sha256sum >/dev/null || die "need yolox-edge, or unzip and sha256sum"
    names=$(unzip -Z1 "$bundle" 2>/dev/null) || die "$bundle: not a readable zip (truncated or damaged)"
    while IFS= read -r n; do
        [[ "$n" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || die "$bundle: entry '$n' is not a plain file name (zip slip?); refusing it"
    done <<< "$names"
    [ -z "$(printf '%s\n' "$names" | sort | uniq -d)" ] || die "$bundle: an entry appears twice; refusing it"
    mkdir "$tmp/b"
    unzip -q "$bundle" -d "$tmp/b" || die "$bundle: damaged zip"
    # unzip makes symlink entries links; sha256sum would follow one, and Gradle would pack its target.
    [ -z "$(find "$tmp/b" -mindepth 1 ! -type f)" ] || die "$bundle: holds a link or special file; refusing it"
    [ -f "$tmp/b/SHA256SUMS" ] || die "$bundle: no SHA256SUMS; not a yolox_edge bundle"
    (cd "$tmp/b" && sha256sum --check --strict --quiet SHA256SUMS) || die "$bundle: a file does not match SHA256SUMS"
    listed=$(grep -c . "$tmp/b/SHA256SUMS")
    [ "$listed" -eq $(( $(printf '%s\n' "$names" | grep -c .) - 1 )) ] || die "$bundle: files not listed in SHA256SUMS"
    rm "$tmp/b/SHA256SUMS"  # checked; the app checks metadata.json's sha256s (verify --extract leaves it out too)
fi

grep -Eq '"format": *"ncnn"' "$tmp/b/metadata.json" \
    || die "$bundle: not an ncnn bundle; the app runs ncnn (package with --target ncnn)"
rm -rf "${assets:?}/$name"
mv "$tmp/b" "$assets/$name"
echo "$bundle -> $assets/$name ($(ls "$assets/$name" | tr '\n' ' '))"
