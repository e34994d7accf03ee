#!/usr/bin/env bash
# The --device paths on a CUDA machine (CI and the tests have none): the apnea teacher on all 35
# learning nights and its x01-x35 figures, a synthetic set, a student distilled on the GPU with
# mixing (the teacher labels the mixes there), and one epoch of an MNIST teacher. Prints the times.
#
#   EDGEKIT_DATA=../shared/data bash benchmarks/cuda_check.sh            # DEVICE=cpu to compare
set -euo pipefail
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-20}
: "${EDGEKIT_DATA:?set EDGEKIT_DATA to the data directory (Apnea-ECG annotations and MNIST)}"
export PYTHONUNBUFFERED=1
runs=$(mktemp -d)
edgekit() { python3 -m edgekit.cli "$@" --runs "$runs" --quiet; }
newest() { ls -t "$runs" | grep "^$1-" | head -1; }
python3 -c "import torch; print('torch', torch.__version__, 'cuda:', torch.cuda.is_available() and torch.cuda.get_device_name())"

started=$(date +%s)
edgekit teacher train --dataset apnea-ecg --no-validation --epochs "$EPOCHS" --device "$DEVICE"
echo "apnea teacher, $EPOCHS epochs: $(( $(date +%s) - started )) s on $DEVICE"
apnea_teacher=$(newest teacher)
edgekit teacher eval "$apnea_teacher" --json > "$runs/eval.json"
python3 -c "import json, sys; print('x01-x35 per-minute accuracy', json.load(open(sys.argv[1]))['minute']['accuracy'])" "$runs/eval.json"
edgekit synth generate "$apnea_teacher" --size 2048
started=$(date +%s)
edgekit student distill "$(newest synth)" --arch apnea_cnn --epochs 5 --device "$DEVICE"
echo "apnea student, 5 epochs with mixing: $(( $(date +%s) - started )) s on $DEVICE"
started=$(date +%s)
edgekit teacher train --dataset mnist --arch unlearning_cnn --epochs 1 --device "$DEVICE"
echo "MNIST unlearning_cnn, 1 epoch: $(( $(date +%s) - started )) s on $DEVICE"
python3 -m edgekit.cli runs --runs "$runs"
echo "cuda check passed"
