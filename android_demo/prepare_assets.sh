#!/usr/bin/env bash
# Put a yolox_edge bundle (ncnn FP32 or INT8) into the app's assets, after checking it.
#
#   ./prepare_assets.sh BUNDLE.zip [NAME]
#
# The bundle lands in app/src/main/assets/bundles/NAME/ (NAME defaults to the zip's name);
# the app lists every bundle found there. Checks: with the yolox-edge SDK installed,
# `yolox-edge verify --extract` (zip slip, sizes, sha256 of every file, metadata); without
# it, the same essentials with unzip + sha256sum (Linux) or shasum -a 256 (macOS): every entry
# a plain file name, no links, SHA256SUMS listing each other entry exactly once with its sha256.
# The app re-checks each model file's sha256 against metadata.json before ncnn loads it.
# A bundle already there under NAME is replaced only once the new one is checked, and is put
# back if the replacement is interrupted; after a kill -9 in between, by the next run. The new
# files are synced before they are moved in and the assets folder after.
set -euo pipefail

die() { echo "prepare_assets.sh: error: $*" >&2; exit 2; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 BUNDLE.zip [NAME]"
bundle=$1
[ -f "$bundle" ] || die "$bundle: bundle not found; make one with 'yolox-edge package EXPORT --target ncnn --out NAME.zip'"
name=${2:-$(basename "$bundle" .zip)}
[[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "bundle name '$name': use letters, digits, '.', '_' or '-'"

# Flush to disk: `sync FILE...` (GNU coreutils 8.24+, busybox 1.30+) fsyncs just those; where sync
# takes no files (macOS ignores them, an older busybox refuses them) plain sync flushes everything.
# Never a reason to fail a copy that is done: no sync at all is skipped.
flush() { sync -- "$@" 2>/dev/null || sync 2>/dev/null || true; }

here=$(cd "$(dirname "$0")" && pwd)
assets="$here/app/src/main/assets/bundles"
dest="$assets/$name"
mkdir -p "$assets"

# Leftovers of runs killed with kill -9 (finish below never ran): .incoming.NAME@HOST.PID.XXXXXX.
# A folder whose PID is alive belongs to a run going on now (or, after PID reuse, waits for a
# later run): left alone. The name, host and PID are in the folder's name, so a folder exists only
# with them (mktemp creates it in one step) and another run never sees a half-recorded one.
# The host: on a shared or network folder a run on another machine has a PID this one cannot
# probe (it would look killed), so only this host's are swept. '@' as bundle names may hold dots;
# the host as letters, digits and '-' ($HOSTNAME: no tool needed; node1.lab -> node1-lab).
host=${HOSTNAME:-}
host=${host//[^A-Za-z0-9-]/-}
host=${host:0:63}
host=${host:-unknown-host}
leftover_re='^\.incoming\.([A-Za-z0-9][A-Za-z0-9._-]*)@([A-Za-z0-9-]+)\.([0-9]+)\.[A-Za-z0-9]+$'  # a variable: bash 3.2
# an earlier prepare_assets.sh's name, without the host: swept as it was (by its PID, here)
pid_only_re='^\.incoming\.([A-Za-z0-9][A-Za-z0-9._-]*)\.([0-9]+)\.[A-Za-z0-9]+$'
for d in "$assets"/.incoming.*; do
    [ -d "$d" ] || continue  # no match: the pattern itself
    if [[ "${d##*/}" =~ $leftover_re ]]; then
        lname=${BASH_REMATCH[1]} lhost=${BASH_REMATCH[2]} lpid=${BASH_REMATCH[3]}
        if [ "$lhost" != "$host" ]; then
            echo "prepare_assets.sh: $d was made by a run on $lhost, not this machine ($host): left alone, as whether that run goes on cannot be told from here; delete it if no prepare_assets.sh there is running" >&2
            continue
        fi
    elif [[ "${d##*/}" =~ $pid_only_re ]]; then
        lname=${BASH_REMATCH[1]} lpid=${BASH_REMATCH[2]}
    else
        echo "prepare_assets.sh: $d is left by an older prepare_assets.sh (no bundle name recorded): move $d/old, if there, back to $assets/NAME by hand, then delete $d" >&2
        continue
    fi
    # kill -0 fails for another user's process too (it would count as killed): the assets
    # folder is one developer's. Two runs for the same NAME at once are not supported either.
    if kill -0 "$lpid" 2>/dev/null; then continue; fi
    # Another run may be at the same leftover: each step tolerates its being gone.
    if [ -d "$d/old" ] && [ ! -e "$assets/$lname" ]; then
        if mv "$d/old" "$assets/$lname" 2>/dev/null; then
            flush "$assets"  # the rename back on disk before its leftover folder goes
            rm -rf "$d"
            echo "prepare_assets.sh: put back $lname, left in $d by a run that was killed" >&2
        elif [ -d "$d/old" ]; then
            echo "prepare_assets.sh: could not put back $lname from $d/old; move it to $assets/$lname by hand" >&2
        fi
    elif [ -d "$d/old" ]; then
        rm -rf "$d" && echo "prepare_assets.sh: deleted the previous $lname left in $d by a killed run ($assets/$lname was replaced since)" >&2
    else
        rm -rf "$d" && echo "prepare_assets.sh: removed $d, left with no bundle to put back by a run that was killed" >&2
    fi
done

# Hidden (aapt leaves dot-folders out of the APK) and in the assets folder, so every move
# below is a rename on one file system. The name, host and PID are for the leftover check above.
tmp=$(mktemp -d "$assets/.incoming.$name@$host.$$.XXXXXX")
finish() {
    # Stopped between moving the old bundle aside and the new one in: put the old one back.
    if [ -d "$tmp/old" ] && [ ! -e "$dest" ]; then
        mv "$tmp/old" "$dest" 2>/dev/null \
            || { echo "prepare_assets.sh: the previous $name is kept in $tmp/old; the next run puts it back, or move it to $dest by hand" >&2; return; }
        flush "$assets"
    fi
    rm -rf "$tmp"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# sha256 of stdin: GNU coreutils' sha256sum, or shasum (perl, what macOS has).
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { local h; h=$(sha256sum) && printf '%s\n' "${h%% *}"; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { local h; h=$(shasum -a 256) && printf '%s\n' "${h%% *}"; }
else
    sha256() { return 1; }
fi

if command -v yolox-edge >/dev/null 2>&1; then
    yolox-edge verify "$bundle" --extract "$tmp/b" >/dev/null
else
    command -v unzip >/dev/null && sha256 </dev/null >/dev/null \
        || die "need yolox-edge, or unzip and sha256sum (Linux) or shasum (macOS)"
    names=$(unzip -Z1 "$bundle" 2>/dev/null) || die "$bundle: not a readable zip (truncated or damaged)"
    while IFS= read -r n; do
        [[ "$n" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || die "$bundle: entry '$n' is not a plain file name (zip slip?); refusing it"
    done <<< "$names"
    [ -z "$(printf '%s\n' "$names" | sort | uniq -d)" ] || die "$bundle: an entry appears twice; refusing it"
    # On a case-insensitive disk (macOS, Windows) labels.txt and LABELS.txt are one file: the second
    # would overwrite the first after both were checked. (uniq -i: GNU, busybox and BSD alike.)
    [ -z "$(printf '%s\n' "$names" | sort -f | uniq -di)" ] \
        || die "$bundle: two entries whose names differ only in case; refusing it"
    mkdir "$tmp/b"
    unzip -q "$bundle" -d "$tmp/b" || die "$bundle: damaged zip"
    # unzip makes symlink entries links; hashing would follow one, and Gradle would pack its target.
    [ -z "$(find "$tmp/b" -mindepth 1 ! -type f)" ] || die "$bundle: holds a link or special file; refusing it"
    [ -f "$tmp/b/SHA256SUMS" ] || die "$bundle: no SHA256SUMS; not a yolox_edge bundle"
    # SHA256SUMS in sha256sum's format, one line per other entry: "<64 hex>  <name>" ('*' for binary mode).
    listed=""
    line_re='^([0-9a-f]{64}) [ *]([A-Za-z0-9][A-Za-z0-9._+-]*)$'  # in a variable: bash 3.2 (macOS) reads it alike
    while IFS= read -r line || [ -n "$line" ]; do
        [ -n "$line" ] || continue
        [[ "$line" =~ $line_re ]] \
            || die "$bundle: SHA256SUMS line '$line' is not '<sha256>  <file>'; refusing it"
        listed+="${BASH_REMATCH[2]} ${BASH_REMATCH[1]}"$'\n'
    done < "$tmp/b/SHA256SUMS"
    [ -z "$(printf '%s' "$listed" | while read -r n _; do echo "$n"; done | sort | uniq -d)" ] \
        || die "$bundle: SHA256SUMS lists a file twice; refusing it"
    count=0
    while IFS= read -r n; do
        [ "$n" != SHA256SUMS ] || continue
        want=""
        while read -r ln lh; do [ "$ln" != "$n" ] || want=$lh; done <<< "$listed"
        [ -n "$want" ] || die "$bundle: $n is not listed in SHA256SUMS (added after packaging?); refusing it"
        got=$(sha256 < "$tmp/b/$n") || die "$bundle: cannot hash $n"
        [ "$got" = "$want" ] || die "$bundle: $n does not match its sha256 in SHA256SUMS (damaged or edited)"
        count=$((count + 1))
    done <<< "$names"
    [ "$count" -eq "$(printf '%s' "$listed" | grep -c .)" ] \
        || die "$bundle: SHA256SUMS lists a file the bundle does not hold; refusing it"
    rm "$tmp/b/SHA256SUMS"  # checked; the app checks metadata.json's sha256s (verify --extract leaves it out too)
fi

grep -Eq '"format": *"ncnn"' "$tmp/b/metadata.json" \
    || die "$bundle: not an ncnn bundle; the app runs ncnn (package with --target ncnn)"
# The new files and their folder on disk before the rename, so that a power loss after it cannot
# leave the app a bundle of empty files (file systems may write a rename before the data).
flush "$tmp/b"/* "$tmp/b"
# Old aside, new in, old deleted (by finish): two renames, never a moment with neither copy on disk.
if [ -e "$dest" ]; then mv "$dest" "$tmp/old"; fi
mv "$tmp/b" "$dest"
flush "$assets"  # the renames themselves, before this run says the bundle is in place
echo "$bundle -> $dest ($(ls "$dest" | tr '\n' ' '))"
