#!/usr/bin/env bash
# Download and unpack ncnn's prebuilt Android package (the version pinned in gradle.properties)
# into app/src/main/cpp/, where app/build.gradle.kts and CMakeLists.txt look for it.
#   ./get_ncnn.sh            # CPU package (what the app uses: no Vulkan)
#   NCNN_ZIP=/path/to/ncnn-<version>-android.zip ./get_ncnn.sh   # an already downloaded copy
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's/^ncnnVersion=//p' "$here/gradle.properties")
pkg="ncnn-$version-android"
dest="$here/app/src/main/cpp"
if [ -d "$dest/$pkg" ]; then echo "$dest/$pkg already present"; exit 0; fi
zip=${NCNN_ZIP:-}
if [ -z "$zip" ]; then
    zip=$(mktemp --suffix=.zip)
    trap 'rm -f "$zip"' EXIT
    curl -fL --retry 3 -o "$zip" "https://github.com/Tencent/ncnn/releases/download/$version/$pkg.zip"
fi
unzip -q "$zip" -d "$dest"
[ -f "$dest/$pkg/arm64-v8a/lib/cmake/ncnn/ncnnConfig.cmake" ] || { echo "unexpected layout in $zip" >&2; exit 1; }
echo "ncnn $version -> $dest/$pkg"
