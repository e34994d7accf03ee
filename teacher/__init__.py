"""Teachers: datasets (Apnea-ECG through wfdb, images through torchvision), the model registry,
training, evaluation and unlearning."""

from pathlib import Path

from teacher._apnea import (
    LABEL_NAMES,
    NIGHT_MEDIAN_RR_S,
    ApneaWindows,
    leave_nights_out_folds,
    leave_patients_out,
    load_windows,
    night_windows,
    official_split,
    validation_records,
)
from teacher._apnea_io import (
    LEARNING_RECORDS,
    TEST_RECORDS,
    ApneaDataError,
    Night,
    download_apnea_ecg,
    find_apnea_dir,
    parse_answers,
    read_night,
    resolve_data_dir,
)
from teacher._apnea_teacher import (
    THRESHOLD_GRID,
    TrainedTeacher,
    best_threshold,
    decision_accuracy,
    evaluate_apnea_teacher,
    load_teacher,
    model_contract,
    score_windows,
    training_windows,
    train_apnea_teacher,
    training_beat_noise,
)
from teacher._decision import AHI_THRESHOLD, DecisionRule, estimated_ahi, smooth_by_night, smooth_night
from teacher._image_teacher import (
    DEFAULT_ARCH,
    RECIPES,
    classification_figures,
    evaluate_image_teacher,
    image_train_config,
    split_validation,
    train_image_teacher,
)
from teacher._images import IMAGE_DATASETS, ImageData, ImageDataError, load_image_dataset
from teacher._metrics import minute_metrics, night_metrics, roc_auc
from teacher._plots import plot_ahi
from teacher._models import (
    APNEA_CONTRACT,
    APNEA_WINDOW,
    REGISTRY,
    InputContract,
    create_model,
    get_entry,
    image_contract,
    list_models,
    rr_contract,
)
from teacher._rr import BeatNoise, RRSeries, WindowSpec, clean_rr, minute_windows, resample_rr
from teacher._training import TrainConfig, fit, predict_proba, resolve_device, to_float, trained_seconds
from teacher._guides import GUIDE_FOLDS, GUIDE_PARTITIONS, complete_guides, guide_folds, guide_targets, train_guides
from teacher._unlearn import PATIENT_UNLEARN, SAMPLES_UNLEARN, StochasticTeacherUnlearner, UnlearnConfig
from teacher._unlearn_proof import CHECKS, Examples, certify, forgetting_score, halves, per_example_loss, threshold_attack_auc
from teacher._certificate import certificate_headline, guides_text, plot_certificate, retrained_text, write_certificate_html
from teacher._datasets import DATASET_HANDLERS, DATASETS, RealData, TeacherData, dataset
from teacher._unlearn_request import (
    CERTIFICATE_HTML,
    CERTIFICATE_JSON,
    CERTIFICATE_PNG,
    RETAIN_SAMPLE,
    UnknownTargetError,
    UnlearnedTeacher,
    config_after_request,
    target_mask,
    unlearn_request,
)
from teacher._unlearn_baselines import BaselineConfig, bad_teacher, finetune, neggrad_plus

# Nine real nights shipped with the package (see its README): the demo's data and the tests'.
EMBEDDED_APNEA_DIR = Path(__file__).parent / "data" / "apnea-ecg-mini"
