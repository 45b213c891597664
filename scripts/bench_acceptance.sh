#!/usr/bin/env bash
# The latency runs of docs/PERFORMANCE.md (section 1 and the AVX2 record): build every artifact the
# table compares from the official Nano, then bench them all side by side against the official-style
# baseline. Needs ../shared/refdata (or REFDATA=...) and the SDK installed.
#
#   bash scripts/bench_acceptance.sh build OUT            # artifacts into OUT/a (5-15 min on 2 cores)
#   bash scripts/bench_acceptance.sh run OUT NAME [RUNS] [PER_TURN]   # OUT/NAME.{json,md,csv,png}
#   yolox-edge bench-compare OUT/run1.json OUT/run2.json  # do two runs repeat?
#
# HSWISH_STEPS (default 20) sets `convert --steps` for the nano_hswish row: its latency does not depend
# on how well its weights were fitted, and the default 500 steps take hours on a 2-core CPU. Its AP is
# then not the converted model's; run `convert` with its defaults for that (docs/PERFORMANCE.md, 8).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
refdata="${REFDATA:-$here/../shared/refdata}"
what="${1:-}"
out="${2:-}"
if [[ -z "$what" || -z "$out" ]]; then
    echo "usage: $0 build OUT | run OUT NAME [RUNS] [PER_TURN]" >&2
    exit 2
fi
if [[ ! -f "$refdata/models/yolox_nano.onnx" ]]; then
    echo "$refdata/models/yolox_nano.onnx: not found; set REFDATA to the reference data folder" >&2
    exit 2
fi
a="$out/a"

case "$what" in
build)
    mkdir -p "$a"
    yolox-edge import-official "$refdata/models/yolox_nano.onnx" --variant nano --out "$a/nano_coco.pt" --force
    yolox-edge calibrate --data "$refdata/coco_tiny/data.yaml" --split train --img-size 416 --count 100 \
        --out "$a/calib416" --force
    for f in onnx openvino ncnn; do
        yolox-edge export "$a/nano_coco.pt" --format "$f" --out "$a/$f" --force
    done
    yolox-edge quantize "$a/nano_coco.pt" --calib "$a/calib416" --format openvino onnx ncnn --out "$a/q" --force
    yolox-edge quantize "$a/nano_coco.pt" --calib "$a/calib416" --format openvino --silu rational \
        --out "$a/q_rat" --force
    yolox-edge export "$a/nano_coco.pt" --format openvino --silu rational --out "$a/e_rat" --force
    yolox-edge convert "$a/nano_coco.pt" --to nano_hswish --calib "$a/calib416" --steps "${HSWISH_STEPS:-20}" \
        --out "$a/nano_hswish.pt" --force
    yolox-edge quantize "$a/nano_hswish.pt" --calib "$a/calib416" --format openvino --out "$a/qhs" --force
    ;;
run)
    name="${3:?run needs a NAME}"
    runs="${4:-100}"
    per_turn="${5:-5}"
    yolox-edge bench "$a/nano_coco.pt" "$a/onnx" "$a/q/onnx" "$a/openvino" "$a/q/openvino" "$a/ncnn" \
        "$a/q/ncnn" "$a/q_rat" "$a/e_rat" "$a/qhs" \
        --threads 1,2 --warmup 10 --runs "$runs" --runs-per-turn "$per_turn" \
        --baseline "$refdata/models/yolox_nano.onnx" --image "$refdata/images/dog.jpg" \
        --json "$out/$name.json" --md "$out/$name.md" --csv "$out/$name.csv" --plot "$out/$name.png"
    ;;
*)
    echo "$0: unknown step '$what' (build or run)" >&2
    exit 2
    ;;
esac
