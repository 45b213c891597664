#!/bin/bash
# GPU checks (CI has no GPU): the CUDA tests, the trainer tests with device auto (-> cuda), the
# overfit recipe with AMP on and off, a fine-tune of the imported COCO Nano on coco_tiny with the
# official Nano recipe, and the main job with an ONNX target. Run from the repository root:
#   REFDATA=../shared/refdata LOGS=gpu_logs bash scripts/gpu_check.sh
# Needs torch with CUDA, the project's Python dependencies (openvino/ncnn/pnnx are not used).
# On the lent GPU machines (Python 3.12, torch 2.11 + CUDA there) these were missing and went as
# wheels: pycocotools nncf openvino-telemetry pydot onnxslim jsonschema jsonschema-specifications
# referencing rpds-py (pip install --no-deps --target /tmp/site; PYTHONPATH=/tmp/site), and the
# refdata folder was copied beside the repo into an ignored folder (REFDATA=that folder).
set -u
R=$PWD
REFDATA=${REFDATA:-$R/../shared/refdata}
LOGS=${LOGS:-$R/gpu_logs}
mkdir -p "$LOGS"
export PYTHONPATH=$R${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
step() { echo "=== $1 $(date +%T)"; }
step env
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc
  python3 -c "import torch;print('torch',torch.__version__,'cuda',torch.version.cuda,torch.cuda.is_available())"; } 2>&1 | tee "$LOGS/env.txt"
step cuda_tests
timeout 300 python3 -m pytest -q -p no:cacheprovider -rs tests/engine/test_cuda.py 2>&1 | tee "$LOGS/cuda_tests.log"
step engine_tests_auto_device
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/engine tests/assign tests/test_loss.py 2>&1 | tail -30 | tee "$LOGS/engine_tests.log"
step overfit_amp
timeout 300 python3 scripts/overfit_amp.py 2>&1 | tee "$LOGS/overfit_amp.log"
W=$(mktemp -d)
step finetune_nano
python3 -m yolox_edge import-official "$REFDATA/models/yolox_nano.onnx" --variant nano --out "$W/n.pt"
timeout 300 python3 -m yolox_edge train --recipe yolox_nano --data "$REFDATA/coco_tiny/data.yaml" --weights "$W/n.pt" \
  --epochs 10 --device cuda --set data.workers=8 --set data.repeat=4 --set train.eval_interval=5 \
  --out "$W/ft" --no-progress 2>&1 | tee "$LOGS/train.log"
step pipeline_onnx
(cd "$W" && timeout 300 python3 -m yolox_edge pipeline --target onnx --out pl 2>&1 | tail -25) | tee "$LOGS/pipeline.log"
step done
