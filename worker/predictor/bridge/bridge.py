"""drum predictor bridge: loads a DRUM model folder and answers prediction calls.

The Go worker starts this under the configured interpreter (see embed.go for the bootstrap that
receives this source as the first frame on fd 3) and talks to it over two pipes:

    fd 3  requests from the worker  (KindRequest, KindShutdown)
    fd 4  replies to the worker     (KindHello once, then KindReply with the request's id)

Frames are ipc's little-endian format: u32 n | u8 kind | 3 reserved | u64 id | u32 metaLen |
meta (JSON) | data.  stdout and stderr belong to the user's code; this file's own log lines go to
stderr as JSON objects so the worker can re-log them at their level.

Everything here mirrors DRUM 1.17.20 (python_model_adapter.py, data_marshalling.py,
structured_input_read_utils.py, artifact_predictors/*): the error texts are wire-level facts.
"""

import io
import json
import logging
import os
import pickle
import signal
import struct
import sys
import textwrap
import time
import traceback
from enum import Enum
from pathlib import Path

KIND_HELLO = 10
KIND_REQUEST = 11
KIND_REPLY = 12
KIND_SHUTDOWN = 13

_HEADER = struct.Struct("<IB3xQI")  # n, kind, reserved, id, metaLen
REQUEST_FD = 3
REPLY_FD = 4

RUNNING_LANG_MSG = "Running environment language: Python."
PRED_COLUMN = "Predictions"

# ---------------------------------------------------------------------------------------------
# Logging: JSON lines on a private copy of stderr (user code may replace sys.stderr).

_LOG_FD = None
_LEVELS = {"trace": 5, "debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "off": 100}
_LOG_LEVEL = 20


def log(level, message, **fields):
    if _LEVELS.get(level, 20) < _LOG_LEVEL:
        return
    rec = {"@level": level, "@message": message}
    rec.update(fields)
    line = json.dumps(rec, default=str) + "\n"
    try:
        os.write(_LOG_FD if _LOG_FD is not None else 2, line.encode("utf-8", "replace"))
    except OSError:
        pass


class _JSONLogHandler(logging.Handler):
    """Sends the user's `logging` records through the same JSON channel, keeping their level."""

    def emit(self, record):
        try:
            msg = self.format(record)
        except Exception:  # a broken format string must not break a prediction
            msg = str(record.msg)
        level = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}.get(
            record.levelno, "error" if record.levelno >= logging.ERROR else "debug"
        )
        log(level, msg, logger=record.name)


# ---------------------------------------------------------------------------------------------
# Framing.


class FrameReader:
    def __init__(self, fd):
        self._f = open(fd, "rb", buffering=64 << 10, closefd=False)

    def _exact(self, n):
        b = self._f.read(n)
        if b is None or len(b) != n:
            return None
        return b

    def read(self):
        """Returns (kind, id, meta_bytes, data_bytes), or None at EOF (the worker is gone)."""
        head = self._exact(4)
        if head is None:
            return None
        (n,) = struct.unpack("<I", head)
        if n < 16:
            raise IOError("bad frame length %d" % n)
        rest = self._exact(16)
        if rest is None:
            return None
        kind, fid, meta_len = struct.unpack("<B3xQI", rest)
        if meta_len > n - 16:
            raise IOError("meta length %d exceeds frame length %d" % (meta_len, n))
        # Two reads, so the payload arrives as its own bytes object (no slicing copy).
        meta = self._exact(meta_len) if meta_len else b""
        data = self._exact(n - 16 - meta_len) if n - 16 > meta_len else b""
        if meta is None or data is None:
            return None
        return kind, fid, meta, data


class FrameWriter:
    def __init__(self, fd):
        self._fd = fd

    def _write_all(self, buf):
        mv = memoryview(buf).cast("B")
        while len(mv):
            n = os.write(self._fd, mv)
            mv = mv[n:]

    def write(self, kind, fid, meta, data=b""):
        meta_b = json.dumps(meta, separators=(",", ":"), default=str).encode("utf-8")
        data_len = memoryview(data).nbytes
        head = _HEADER.pack(16 + len(meta_b) + data_len, kind, fid, len(meta_b))
        # Small payloads go in one write; big ones are written from their own buffer (no copy).
        if data_len <= 64 << 10:
            self._write_all(head + meta_b + bytes(data))
        else:
            self._write_all(head + meta_b)
            self._write_all(data)


# ---------------------------------------------------------------------------------------------
# DRUM's types, as far as user code and error texts can see them.

try:  # user code may compare kwargs["target_type"] with DRUM's own enum
    from datarobot_drum.drum.enum import TargetType  # type: ignore
except Exception:

    class TargetType(Enum):
        BINARY = "binary"
        REGRESSION = "regression"
        ANOMALY = "anomaly"
        UNSTRUCTURED = "unstructured"
        MULTICLASS = "multiclass"
        MULTILABEL = "multilabel"
        TRANSFORM = "transform"
        TEXT_GENERATION = "textgeneration"
        GEO_POINT = "geopoint"
        VECTOR_DATABASE = "vectordatabase"
        AGENTIC_WORKFLOW = "agenticworkflow"

        def is_classification(self):
            return self.value in CLASSIFICATION_TARGETS


CLASSIFICATION_TARGETS = ("binary", "multiclass", "multilabel")
SINGLE_COL_TARGETS = (
    "regression",
    "anomaly",
    "textgeneration",
    "geopoint",
    "vectordatabase",
    "agenticworkflow",
)
# The server casts predictions to float for every target except these (predict_mixin.py).
NOT_CAST_TARGETS = ("textgeneration", "geopoint", "vectordatabase", "agenticworkflow")
TARGET_NAME_TARGETS = ("textgeneration", "vectordatabase", "agenticworkflow")

STRUCTURED_HOOKS = (
    "init",
    "read_input_data",
    "load_model",
    "transform",
    "score",
    "post_process",
    "fit",
    "chat",
    "get_supported_llm_models",
)
UNSTRUCTURED_HOOKS = ("init", "load_model", "score_unstructured")


class DrumCommonException(Exception):
    """DRUM's own failures: their text is the message, verbatim."""


class DrumPythonModelAdapterError(Exception):
    """A user hook or built-in predictor failed; text is '<what failed> Exception: <repr>'."""


def is_user_error(exc):
    """datarobot_drum.CustomHTTPError (or any BaseCustomUserError) without importing DRUM."""
    return any(
        c.__name__ in ("BaseCustomUserError", "CustomHTTPError") for c in type(exc).__mro__
    )


def wrap_hook_error(exc, message):
    """DRUM's _log_and_raise_final_error: user errors pass through, others are wrapped."""
    if is_user_error(exc):
        return exc
    log("error", "%s Exception: %r" % (message, exc), traceback=traceback.format_exc())
    return DrumPythonModelAdapterError("%s Exception: %r" % (message, exc))


# ---------------------------------------------------------------------------------------------
# Built-in artifact predictors (artifact_predictors/*.py).


def _importable(name):
    try:
        __import__(name)
        return True
    except Exception:
        return False


def _pickle_load(path):
    with open(path, "rb") as f:
        try:
            return pickle.load(f, encoding="latin1")
        except TypeError:
            f.seek(0)
            return pickle.load(f)


class ArtifactPredictor:
    name = ""
    extension = ""
    requirements = []
    framework = ""

    def __init__(self):
        self.target_type = None
        self.class_labels = None

    def is_artifact_supported(self, path):
        return path.lower().endswith(self.extension)

    def is_framework_present(self):
        return _importable(self.framework)

    def can_load_artifact(self, path):
        return self.is_artifact_supported(path) and self.is_framework_present()

    def load_model_from_artifact(self, path):
        raise NotImplementedError

    def can_use_model(self, model):
        return False

    def predict(self, data, model, **kwargs):
        """Parameter checks shared by all built-in predictors (ArtifactPredictor.predict)."""
        self.class_labels = kwargs.get("class_labels")
        self.target_type = kwargs["target_type"]
        if self.target_type.value == "multiclass" and not self.class_labels:
            raise DrumCommonException(
                "For `{}` target, the model's class labels must be provided. found: {}".format(
                    self.target_type, self.class_labels
                )
            )
        if self.target_type.value == "binary":
            self.class_labels = [
                kwargs.get("negative_class_label"),
                kwargs.get("positive_class_label"),
            ]
            if None in self.class_labels:
                raise DrumCommonException(
                    "For `{}` target types both class labels must be provided. Found: {}".format(
                        self.target_type.value, self.class_labels
                    )
                )

    def _unsupported_target(self):
        return DrumCommonException(
            "Target type '{}' is not supported by '{}' predictor".format(
                self.target_type.value, self.__class__.__name__
            )
        )


class KerasPredictor(ArtifactPredictor):
    name = "keras"
    extension = ".h5"
    framework = "tensorflow"
    requirements = ["scipy", "numpy", "h5py", "tensorflow>=2.2.1"]

    def load_model_from_artifact(self, path):
        from tensorflow import keras

        return keras.models.load_model(path, compile=False)

    def can_use_model(self, model):
        if not self.is_framework_present():
            return False
        try:
            from tensorflow import keras
            from sklearn.pipeline import Pipeline

            if isinstance(model, Pipeline):
                return isinstance(model.steps[-1][1], keras.Model)
            return isinstance(model, keras.Model)
        except Exception:
            return False

    def predict(self, data, model, **kwargs):
        super().predict(data, model, **kwargs)
        return model.predict(data), None


class XGBoostPredictor(ArtifactPredictor):
    name = "xgboost"
    extension = ".pkl"
    framework = "xgboost"
    requirements = ["scipy", "numpy", "xgboost"]

    def load_model_from_artifact(self, path):
        return _pickle_load(path)

    def can_use_model(self, model):
        if not self.is_framework_present():
            return False
        try:
            import xgboost
            from sklearn.pipeline import Pipeline

            if isinstance(model, Pipeline):
                return isinstance(
                    model[-1], (xgboost.sklearn.XGBClassifier, xgboost.sklearn.XGBRegressor)
                )
            return isinstance(model, xgboost.core.Booster)
        except Exception:
            return False

    def predict(self, data, model, **kwargs):
        super().predict(data, model, **kwargs)
        import xgboost

        native = isinstance(model, xgboost.core.Booster)
        if native:
            data = xgboost.DMatrix(data)
        labels = model.classes_ if hasattr(model, "classes_") else None
        if self.target_type.value in CLASSIFICATION_TARGETS:
            predictions = model.predict(data) if native else model.predict_proba(data)
        elif self.target_type.value in ("regression", "anomaly", "geopoint"):
            predictions = model.predict(data)
        else:
            raise self._unsupported_target()
        return predictions, labels


class PyTorchPredictor(ArtifactPredictor):
    name = "torch"
    extension = ".pth"
    framework = "torch"
    requirements = ["torch", "numpy", "scikit-learn", "scipy"]

    def load_model_from_artifact(self, path):
        import torch

        model = torch.load(path)
        model.eval()
        return model

    def can_use_model(self, model):
        if not self.is_framework_present():
            return False
        try:
            import torch.nn as nn

            return isinstance(model, nn.Module)
        except Exception:
            return False

    def predict(self, data, model, **kwargs):
        super().predict(data, model, **kwargs)
        import torch

        tensor = torch.from_numpy(data.values).type(torch.FloatTensor)
        with torch.no_grad():
            predictions = model(tensor).cpu().data.numpy()
        return predictions, None


class SKLearnPredictor(ArtifactPredictor):
    name = "scikit-learn"
    extension = ".pkl"
    framework = "sklearn"
    requirements = ["scikit-learn", "scipy", "numpy"]

    def can_load_artifact(self, path):
        # DRUM unpickles any .pkl here, sklearn installed or not.
        return self.is_artifact_supported(path)

    def load_model_from_artifact(self, path):
        return _pickle_load(path)

    def can_use_model(self, model):
        if not self.is_framework_present():
            return False
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def predict(self, data, model, **kwargs):
        super().predict(data, model, **kwargs)
        labels = None
        if self.target_type.value in CLASSIFICATION_TARGETS:
            if hasattr(model, "classes_"):
                labels = list(model.classes_)
            predictions = model.predict_proba(data)
        elif self.target_type.value in ("regression", "anomaly"):
            predictions = model.predict(data)
        else:
            raise self._unsupported_target()
        return predictions, labels


class ONNXPredictor(ArtifactPredictor):
    name = "onnx"
    extension = ".onnx"
    framework = "onnxruntime"
    requirements = ["onnxruntime"]

    def load_model_from_artifact(self, path):
        import onnxruntime

        return onnxruntime.InferenceSession(path)

    def can_use_model(self, model):
        if not self.is_framework_present():
            return False
        import onnxruntime

        return isinstance(model, onnxruntime.InferenceSession)

    def predict(self, data, model, **kwargs):
        super().predict(data, model, **kwargs)
        import numpy as np
        import pandas as pd

        input_name = model.get_inputs()[0].name
        outputs = model.run(None, {input_name: data.to_numpy(np.float32)})
        if not outputs:
            raise DrumCommonException("ONNX model should return at least 1 output.")
        predictions = outputs[0]
        if len(outputs) > 1 and self.target_type.value in ("binary", "multiclass"):
            for meta, out in zip(model.get_outputs(), outputs):
                if "prob" in meta.name.lower():
                    predictions = out
                    break
        if isinstance(predictions, list):  # list of {class: probability} dicts
            predictions = pd.DataFrame(predictions).values
        return predictions, None


# ---------------------------------------------------------------------------------------------
# Label matching and output validation (data_marshalling.py).

_TRUE = ("t", "true", "y", "yes", "on", "1", "1.0")
_FALSE = ("false", "n", "no", "off", "0", "none", "0.0")


def _standardize(label):
    """float, else DRUM's ToBool vocabulary as 1.0/0.0, else the lower-cased string."""
    try:
        return float(label)
    except (ValueError, TypeError):
        pass
    if isinstance(label, str):
        s = label.strip().lower()
        if s in _TRUE:
            return 1.0
        if s in _FALSE:
            return 0.0
        return label.lower()
    return label


def _marshal_labels(request_labels, model_labels):
    if model_labels is not None:
        if set(_standardize(r) for r in request_labels) == set(
            _standardize(m) for m in model_labels
        ):

            def corresponding(m):
                for r in request_labels:
                    if _standardize(m) == _standardize(r):
                        return r

            return [corresponding(m) for m in model_labels]
        raise DrumCommonException(
            "Expected predictions to have columns {}, but encountered {}".format(
                request_labels, model_labels
            )
        )
    return request_labels


def marshal_predictions(request_labels, predictions, target_type, model_labels=None):
    import numpy as np
    import pandas as pd

    if not isinstance(predictions, np.ndarray):
        raise DrumCommonException(
            "predictions must return a np array, but received {}".format(type(predictions))
        )
    if len(predictions.shape) == 1:
        predictions = predictions.reshape(-1, 1)
    if len(predictions.shape) != 2:
        raise DrumCommonException(
            "predictions must return a 2 dimensional array, but we received a {} dimensional array".format(
                len(predictions.shape)
            )
        )
    tt = target_type.value
    if tt in CLASSIFICATION_TARGETS:
        labels = _marshal_labels(request_labels, model_labels)
        if predictions.shape[1] == 1:
            if len(labels) == 1:
                raise DrumCommonException(
                    "Classification problems must have more than one class label"
                )
            if len(labels) != 2:
                raise DrumCommonException(
                    "Only one dimension of probability returned, but there are {} class labels in this model".format(
                        len(labels)
                    )
                )
            # DRUM's rule: a lone column is the probability of the *second* label given.
            neg_label, pos_label = labels[0], labels[1]
            frame = pd.DataFrame(predictions, columns=[pos_label])
            frame[neg_label] = 1 - frame[pos_label]
            predictions = frame[[neg_label, pos_label]].values
        if predictions.shape[1] != len(labels):
            raise DrumCommonException(
                "Your predictions must return the probability distribution for the correct number "
                "of class labels. Expected {} columns, but received {}".format(
                    len(labels), predictions.shape[1]
                )
            )
        if (predictions < 0).any():
            raise DrumCommonException("Your prediction probabilities have negative values")
        if (predictions > 1).any():
            raise DrumCommonException("Your prediction probabilities have values greater than 1")
        if tt != "multilabel":
            good = np.isclose(predictions.sum(axis=1), 1)
            if not np.all(good):
                raise DrumCommonException(
                    "Your prediction probabilities do not add up to 1. \n{}".format(
                        predictions[~good]
                    )
                )
        return _frame_of(predictions, labels)
    if tt in SINGLE_COL_TARGETS:
        if predictions.shape[1] != 1:
            raise DrumCommonException(
                "Regression, Text Generation, Agentic Workflow and anomaly predictions must "
                "contain only 1 column. Your predictions have {} columns".format(
                    predictions.shape[1]
                )
            )
        return _frame_of(predictions, [PRED_COLUMN])
    return predictions


def _frame_of(values, columns):
    """pd.DataFrame(values, columns=columns) for a 2-D numeric array (the same frame: one
    block holding values.T, a RangeIndex, columns as the constructor makes them), built
    from pandas' internals: 5 µs rather than 27 for a one-row prediction."""
    import pandas as pd

    if values.ndim != 2 or values.dtype.kind not in "fiub" or values.shape[1] != len(columns):
        return pd.DataFrame(values, columns=columns)
    try:
        from pandas._libs.internals import BlockPlacement
        from pandas.core.indexes.api import ensure_index
        from pandas.core.internals import BlockManager
        from pandas.core.internals.blocks import new_block
    except ImportError:  # another pandas
        return pd.DataFrame(values, columns=columns)
    import numpy as np

    if all(type(c) is str for c in columns):
        # What inference makes of str labels (an object Index), without the inference.
        index = pd.Index._simple_new(np.array(columns, dtype=object))
    else:
        index = ensure_index(columns)
    block = new_block(values.T, placement=BlockPlacement(np.arange(values.shape[1], dtype=np.intp)), ndim=2)
    return pd.DataFrame(BlockManager((block,), [index, pd.RangeIndex(values.shape[0])]))


# ---------------------------------------------------------------------------------------------
# Input (structured_input_read_utils.py).


# DRUM echoes the whole body in this message (400 KB in, 600 KB out); drum keeps DRUM's
# exact text up to this many bytes and truncates beyond (a deliberate difference).
BODY_EXCERPT_BYTES = 1024


def _body_excerpt(binary_data):
    data = bytes(binary_data[: BODY_EXCERPT_BYTES + 1])
    if len(data) <= BODY_EXCERPT_BYTES:
        return str(data)
    return "{}... (truncated: {} bytes in all)".format(data[:BODY_EXCERPT_BYTES], len(binary_data))


def read_structured_input(binary_data, mimetype, sparse_colnames):
    import pandas as pd

    try:
        if mimetype == "text/mtx":
            from scipy.io import mmread

            return pd.DataFrame.sparse.from_spmatrix(
                mmread(io.BytesIO(binary_data)), columns=sparse_colnames
            )
        try:
            df = pd.read_csv(io.BytesIO(binary_data))
        except UnicodeDecodeError:
            log(
                "error",
                "A non UTF-8 encoding was encountered while opening the data.\nSave this using "
                "utf-8 encoding, for example with pandas to_csv('filename.csv', encoding='utf-8').",
            )
            raise DrumCommonException("Supplied CSV input file encoding must be UTF-8.")
        if df.shape[1] == 1:
            # A blank line in a one-column CSV is a missing value, not a separator.
            df = pd.read_csv(io.BytesIO(binary_data), skip_blank_lines=False)
        return df
    except pd.errors.ParserError:
        raise DrumCommonException(
            "Pandas failed to read input binary data {}".format(_body_excerpt(binary_data))
        )


def _object_column(col, buf, rows):
    import numpy as np

    off = col["offset"]
    tags = np.frombuffer(buf, dtype=np.uint8, count=rows, offset=off)
    strs = col.get("strs", 0)
    text = buf[off + rows : off + col["bytes"]]
    if not strs:
        texts = []
    elif col.get("sep") == "len":
        texts, p = [], 0
        for _ in range(strs):
            (n,) = struct.unpack_from("<I", text, p)
            texts.append(bytes(text[p + 4 : p + 4 + n]).decode("utf-8"))
            p += 4 + n
    else:
        texts = bytes(text).decode("utf-8").split("\x00")
    out = np.empty(rows, dtype=object)
    if strs == rows:
        out[:] = texts
        return out
    if strs:
        where = np.flatnonzero(tags == 0)
        for i, t in zip(where.tolist(), texts):
            out[i] = t
    for tag, value in ((1, float("nan")), (2, True), (3, False)):
        for i in np.flatnonzero(tags == tag).tolist():
            out[i] = value
    return out


_TABLE_DTYPES = {"int64": "<i8", "float64": "<f8", "bool": "?"}


def _table_block(kind, cols, buf, rows):
    """The 2-D values (len(cols) x rows) of one kind's columns, as a new writable array."""
    import numpy as np

    if kind == "object":
        values = np.empty((len(cols), rows), dtype=object)
        for j, col in enumerate(cols):
            values[j] = _object_column(col, buf, rows)
        return values
    if kind not in _TABLE_DTYPES:
        raise DrumCommonException("unknown table column kind {!r}".format(kind))
    dtype = np.dtype(_TABLE_DTYPES[kind])
    first, size = cols[0]["offset"], rows * dtype.itemsize
    if all(col["offset"] == first + j * size for j, col in enumerate(cols)):
        # Back to back (as the worker lays them out): one copy of the whole block.
        return np.frombuffer(buf, dtype=dtype, count=len(cols) * rows, offset=first).reshape(
            len(cols), rows
        ).astype(kind, copy=True)
    values = np.empty((len(cols), rows), dtype=kind)
    for j, col in enumerate(cols):
        values[j] = np.frombuffer(buf, dtype=dtype, count=rows, offset=col["offset"])
    return values


# Per column layout (names and kinds), what build_table_frame derives from it: requests
# to one model almost always share one layout, so it is worked out once.
_FRAME_PLANS = {}


def _frame_plan(cols):
    """(names, groups, order) for these columns: names as an object array, column indexes
    by kind, and the order of the kinds' blocks (see build_table_frame)."""
    import numpy as np

    key = tuple((col["name"], col["kind"]) for col in cols)
    plan = _FRAME_PLANS.get(key)
    if plan is None:
        groups = {}
        for i, (_, kind) in enumerate(key):
            groups.setdefault(kind, []).append(i)
        runs = [kind for i, (_, kind) in enumerate(key) if i == 0 or key[i - 1][1] != kind]
        order = runs if len(runs) == len(groups) else sorted(groups)
        names = np.array([name for name, _ in key], dtype=object)
        plan = (names, {k: np.array(v, dtype=np.intp) for k, v in groups.items()}, order)
        if len(_FRAME_PLANS) >= 64:  # many layouts: keep the cache small
            _FRAME_PLANS.clear()
        _FRAME_PLANS[key] = plan
    return plan


def build_table_frame(table, data):
    """The DataFrame read_csv would give for a table the worker already parsed (see
    worker/predictor/tablewire.go): same names and order, int64/float64/bool/object
    columns, RangeIndex, object cells as str, float nan, True or False, and the blocks
    read_csv's DataFrame gets: one per dtype, in order of first appearance when each
    dtype's columns are adjacent, else (consolidated) ordered by dtype name."""
    import pandas as pd

    rows = table["rows"]
    cols = table["columns"]
    buf = memoryview(data)[: table["bytes"]]
    names, groups, order = _frame_plan(cols)
    blocks = {kind: _table_block(kind, [cols[i] for i in idx], buf, rows) for kind, idx in groups.items()}
    try:
        from pandas._libs.internals import BlockPlacement
        from pandas.core.internals import BlockManager
        from pandas.core.internals.blocks import new_block

        # A new Index each time (its name can be set by user code); _simple_new takes the
        # names as they are, as pd.Index(names, dtype=object) would, without inferring.
        columns = pd.Index._simple_new(names.copy())
    except (ImportError, AttributeError):  # another pandas: the public (slower) constructor
        arrays = [None] * len(cols)
        for kind, idx in groups.items():
            for j, i in enumerate(idx):
                arrays[i] = blocks[kind][j]
        df = pd.DataFrame(dict(enumerate(arrays)), index=pd.RangeIndex(rows))
        df.columns = pd.Index(list(names), dtype=object)
        return df
    mgr = BlockManager(
        tuple(
            new_block(blocks[kind], placement=BlockPlacement(groups[kind]), ndim=2)
            for kind in order
        ),
        [columns, pd.RangeIndex(rows)],
    )
    return pd.DataFrame(mgr)


# ---------------------------------------------------------------------------------------------
# The model (python_model_adapter.py + python_predictor.py).


class Model:
    def __init__(self, cfg):
        self.code_dir = cfg["code_dir"]
        self.target_type = TargetType(cfg["target_type"])
        self.positive_class_label = cfg.get("positive_class_label") or None
        self.negative_class_label = cfg.get("negative_class_label") or None
        self.class_labels = cfg.get("class_labels") or None
        self.hooks = {}
        self.model = None
        self.predictor = None
        self.predictors = [
            KerasPredictor(),
            XGBoostPredictor(),
            PyTorchPredictor(),
            SKLearnPredictor(),
            ONNXPredictor(),
        ]
        self.target_name = None
        if self.target_type.value in TARGET_NAME_TARGETS:
            self.target_name = os.environ.get("TARGET_NAME")
            if not self.target_name:
                raise ValueError(
                    "Unexpected empty target name for text generation or vector database target."
                )

    # -- start-up ---------------------------------------------------------------------------

    def load(self):
        sys.path.append(self.code_dir)
        self._load_custom_hooks()
        try:
            self._load_model()
        except Exception as e:
            raise DrumCommonException("An error occurred when loading your artifact: {}".format(e))

    def _load_custom_hooks(self):
        paths = list(Path(self.code_dir).rglob("custom.py"))
        if len(paths) > 1:
            raise RuntimeError("Found too many custom hook files: {}".format(paths))
        if not paths:
            log("debug", "No custom.py file detected in {}".format(self.code_dir))
            if self.target_type.value == "unstructured":
                raise DrumCommonException(
                    "In 'unstructured' mode hook 'score_unstructured' must be provided."
                )
            return
        path = paths[0]
        log("debug", "Detected {} .. trying to load hooks".format(path))
        sys.path.insert(0, os.path.dirname(path))
        try:
            module = __import__("custom")
        except ImportError as e:
            log("error", "Could not load hooks: {}".format(e))
            raise DrumCommonException(
                "\n\n{}\nFailed loading hooks from [{}] : {}".format(RUNNING_LANG_MSG, path, e)
            )
        if getattr(module, "CustomTask", None) is not None:
            raise DrumCommonException(
                "The CustomTask class interface (custom.py defines CustomTask) is not supported "
                "by drum yet; use the hook functions (load_model, score, ...) instead."
            )
        names = UNSTRUCTURED_HOOKS if self.target_type.value == "unstructured" else STRUCTURED_HOOKS
        for name in names:
            fn = getattr(module, name, None)
            if fn is not None:
                self.hooks[name] = fn
        if self.target_type.value == "unstructured" and "score_unstructured" not in self.hooks:
            raise DrumCommonException(
                "In 'unstructured' mode hook 'score_unstructured' must be provided."
            )
        if "init" in self.hooks:
            self.hooks["init"](code_dir=self.code_dir)
        log("debug", "Hooks loaded", hooks=sorted(self.hooks))

    def _load_model(self):
        if "load_model" in self.hooks:
            try:
                model = self.hooks["load_model"](self.code_dir)
            except Exception as exc:
                raise wrap_hook_error(exc, "'load_model' hook failed to load the model.")
            if model is None:
                raise DrumCommonException(
                    "'load_model' hook failed to load model, None is returned."
                )
            self.model = model
        else:
            self.model = self._load_via_predictors(self._detect_artifact())

        tt = self.target_type.value
        if tt not in ("unstructured", "transform") and not (
            "score" in self.hooks or "chat" in self.hooks
        ):
            for pred in self.predictors:
                if pred.can_use_model(self.model):
                    self.predictor = pred
                    break
            if self.predictor is None:
                raise DrumCommonException(
                    "\n\n{}\nCould not find any framework to handle loaded model and a score "
                    "hook is not provided".format(RUNNING_LANG_MSG)
                )
            log("debug", "Predictor to use: {}".format(self.predictor.name))
        if (
            tt == "transform"
            and "transform" not in self.hooks
            and "sklearn" not in str(type(self.model))
        ):
            raise DrumCommonException(
                "A transform task requires a user-defined transform hook for non-sklearn transformers"
            )

    def _detect_artifact(self):
        extensions = sorted(set(p.extension for p in self.predictors))
        files = sorted(os.listdir(self.code_dir))
        files_str = " | ".join(files)
        found = None
        for name in files:
            path = os.path.join(self.code_dir, name)
            if os.path.isdir(path):
                continue
            if any(name.lower().endswith(ext) for ext in extensions):
                if found:
                    raise DrumCommonException(
                        "\n\n{}\nMultiple serialized model files found. Remove extra artifacts "
                        "or overwrite custom.load_model()\nList of retrieved files are: {}".format(
                            RUNNING_LANG_MSG, files_str
                        )
                    )
                found = path
        if not found:
            raise DrumCommonException(
                "\n\n{}\nCould not find model artifact file in: {} supported by default predictors.\n"
                "They support filenames with the following extensions {}.\n"
                "If your artifact is not supported by default predictor, implement "
                "custom.load_model() hook.\nList of retrieved files are: {}".format(
                    RUNNING_LANG_MSG, self.code_dir, extensions, files_str
                )
            )
        return found

    def _load_via_predictors(self, path):
        model = None
        supporting = []
        for pred in self.predictors:
            if pred.is_artifact_supported(path):
                supporting.append(pred)
            if pred.can_load_artifact(path):
                try:
                    model = pred.load_model_from_artifact(path)
                except Exception as exc:
                    raise wrap_hook_error(exc, "Could not load model from the artifact file.")
                break
        if model is None:
            if supporting:
                msg = textwrap.dedent(
                    """
                    The following frameworks support this model artifact
                    but could not load the model. Check if requirements are missing
                    """
                )
                for pred in supporting:
                    msg += "Framework: {}, requirements: {}".format(pred.name, pred.requirements)
                log(
                    "warn",
                    "drum does not bundle these frameworks; install them into the interpreter "
                    "drum runs (DRUM_PYTHON) to serve this artifact",
                    frameworks=[p.name for p in supporting],
                )
                raise DrumCommonException(msg)
            raise DrumCommonException(
                "\n\n{}\nCould not load model from artifact file {}. No builtin support for this "
                "model was detected".format(RUNNING_LANG_MSG, path)
            )
        return model

    def info(self):
        import pandas

        return {
            "ok": True,
            "predictor": self.predictor.name if self.predictor is not None else None,
            "hooks": sorted(self.hooks),
            "python": "%d.%d.%d" % sys.version_info[:3],
            "pandas": pandas.__version__,
        }

    # -- per request ------------------------------------------------------------------------

    def request_labels(self):
        """DRUM's class_ordering: [positive, negative] for binary, the configured list else."""
        if self.positive_class_label is not None and self.negative_class_label is not None:
            return [self.positive_class_label, self.negative_class_label]
        return self.class_labels or None

    def predict(self, binary_data, kwargs, frame=None):
        """DRUM's BaseLanguagePredictor.predict: returns (predictions_df, extra_output_df).
        frame, when given, is binary_data already read as read_structured_input would."""
        kwargs["target_type"] = self.target_type
        if self.positive_class_label is not None and self.negative_class_label is not None:
            kwargs["positive_class_label"] = self.positive_class_label
            kwargs["negative_class_label"] = self.negative_class_label
        if self.class_labels:
            kwargs["class_labels"] = self.class_labels

        if "read_input_data" in self.hooks:
            try:
                data = self.hooks["read_input_data"](binary_data)
            except Exception as exc:
                raise wrap_hook_error(exc, "Model 'read_input_data' hook failed to read input data.")
        elif frame is not None:
            data = frame
        else:
            data = read_structured_input(
                binary_data, kwargs.get("mimetype"), kwargs.get("sparse_colnames")
            )

        if "transform" in self.hooks:
            try:
                data = self.hooks["transform"](data, self.model)
            except Exception as exc:
                raise wrap_hook_error(exc, "Model 'transform hook' failed to transform dataset.")
            _validate_frame(data, "transform")

        predictions, model_labels, extra = self._predict_legacy(data, kwargs)
        frame = marshal_predictions(
            self.request_labels(), predictions, self.target_type, model_labels
        )
        return frame, extra

    def _predict_legacy(self, data, kwargs):
        tt = self.target_type.value
        # Inside DRUM's adapter the binary labels run [negative, positive].
        if tt in CLASSIFICATION_TARGETS:
            if kwargs.get("class_labels"):
                adapter_labels = kwargs["class_labels"]
            else:
                adapter_labels = [
                    kwargs.get("negative_class_label"),
                    kwargs.get("positive_class_label"),
                ]
        else:
            adapter_labels = None

        extra = None
        if "score" in self.hooks:
            try:
                result = self.hooks["score"](data, self.model, **kwargs)
            except Exception as exc:
                raise wrap_hook_error(exc, "Model 'score' hook failed to make predictions.")
            _validate_frame(result, "score")
            result, extra = self._split_extra_output(result, adapter_labels)
            predictions, model_labels = result.values, result.columns
        else:
            try:
                predictions, model_labels = self.predictor.predict(data, self.model, **kwargs)
            except Exception as exc:
                raise wrap_hook_error(exc, "Failure when making predictions.")

        if "post_process" in self.hooks:
            import pandas as pd

            marshalled = marshal_predictions(
                adapter_labels, predictions, self.target_type, model_labels
            )
            try:
                result = self.hooks["post_process"](marshalled, self.model)
            except Exception as exc:
                raise wrap_hook_error(
                    exc, "Model 'post_process' hook failed to post-process predictions."
                )
            if not isinstance(result, pd.DataFrame):
                raise ValueError(
                    "Output of post_process hook must be a dataframe, not a {}".format(type(result))
                )
            predictions, model_labels = result.values, result.columns
        return predictions, model_labels, extra

    def _split_extra_output(self, result, labels):
        if labels:
            if len(result.columns) <= len(labels):
                return result, None
            columns = result.columns.tolist()
            labels = list(labels)
            if labels == columns:
                return result, None
            extra = result.drop(columns=labels)
            ordered = labels if len(labels) == 1 else [c for c in columns if c in labels]
            return result[ordered], extra
        if len(result.columns) <= 1:
            return result, None
        target = PRED_COLUMN
        if self.target_name:
            target = self.target_name
            if target not in result and len(target) >= 2 and target[0] == target[-1] == '"':
                target = target[1:-1]
        return result[[target]], result.drop(columns=[target])


def _validate_frame(value, hook):
    import pandas as pd

    if not isinstance(value, pd.DataFrame):
        raise ValueError("{} must return a dataframe, but received {}".format(hook, type(value)))
    if len(value.shape) != 2:
        raise ValueError(
            "{} must return a dataframe of dim 2, but received one with dims {}".format(
                hook, value.shape
            )
        )


# ---------------------------------------------------------------------------------------------
# Requests.


def _sparse_colnames(meta):
    names = meta.get("sparse_colnames")
    return list(names) if names else None


def handle_predict(model, meta, payload):
    """Server path: float-cast matrix (DRUM's predict_mixin), or JSON for text-like targets."""
    import numpy as np

    kwargs = {
        "binary_data": payload,
        "mimetype": None if meta.get("mimetype_none") else meta.get("mimetype", ""),
        "charset": meta.get("charset") or None,
        "sparse_colnames": _sparse_colnames(meta),
    }
    if meta.get("format") == "mtx":
        kwargs["mimetype"] = "text/mtx"
    table = meta.get("table")
    prebuilt = None
    if table is not None:
        prebuilt = build_table_frame(table, payload)
        kwargs["binary_data"] = payload[table["bytes"] :]
    frame, extra = model.predict(kwargs["binary_data"], kwargs, prebuilt)
    reply = {"ok": True, "columns": [str(c) for c in frame.columns], "rows": int(frame.shape[0])}
    if extra is not None:
        reply["extra_json"] = extra.to_json(orient="split")
    if model.target_type.value in NOT_CAST_TARGETS:
        out = frame[PRED_COLUMN] if len(frame.columns) == 1 else frame
        reply["dtype"] = "json"
        return reply, out.to_json(orient="records").encode("utf-8")
    # DRUM casts with astype("float") ("float32 is not JSON serializable"). When the frame's
    # values already come out as float64 (float64 columns, or ints and floats that numpy
    # widens the same way) that cast changes nothing, and skipping it saves a copy.
    values = frame.to_numpy()
    if values.dtype != np.dtype("<f8"):
        values = frame.astype("float").to_numpy(dtype="<f8")
    values = np.ascontiguousarray(values)
    reply["dtype"] = "f8"
    return reply, memoryview(values).cast("B")


def handle_score(model, meta, payload):
    """drum score path: no float cast; CSV as to_csv writes it, or the printed DataFrame."""
    import pandas as pd

    kwargs = {
        "binary_data": payload,
        "mimetype": "text/mtx" if meta.get("format") == "mtx" else None,
        "sparse_colnames": _sparse_colnames(meta),
    }
    frame, extra = model.predict(kwargs["binary_data"], kwargs)
    combined = frame if extra is None else frame.join(extra)
    text = combined.to_csv(index=False)
    out = meta.get("score_output") or "csv"
    if out == "text":
        # DRUM writes the CSV to a temp file, reads it back and prints the DataFrame.
        text = str(pd.read_csv(io.StringIO(text))) + "\n"
    reply = {
        "ok": True,
        "columns": [str(c) for c in combined.columns],
        "rows": int(combined.shape[0]),
        "dtype": out,
    }
    return reply, text.encode("utf-8")



# ---------------------------------------------------------------------------------------------
# /transform/ (predict_mixin.do_transform, transform_helpers.py).


def _make_csv_payload(frame):
    columns = []
    for c in frame.columns:
        name = str(c).strip().replace("\n", "\\n")
        if not name:
            raise ValueError("Column names must not be empty")
        columns.append(name)
    frame = frame.copy()
    frame.columns = columns
    text = frame.to_csv(index=False, lineterminator="\r\n")
    if text.endswith("\r\n"):
        text = text[:-2]
    return text.encode("utf-8")


def _is_sparse_output(frame):
    import scipy.sparse

    if hasattr(frame, "sparse"):
        try:
            frame.sparse
            return True
        except AttributeError:
            pass
    try:
        return scipy.sparse.issparse(frame.iloc[0, 0]) if frame.shape[0] and frame.shape[1] else False
    except Exception:
        return False


def _multipart(parts):
    """requests_toolbelt's MultipartEncoder: (name, filename or None, bytes) parts."""
    import uuid

    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, filename, data in parts:
        out.write(b"--" + boundary.encode() + b"\r\n")
        if filename is None:
            out.write(('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode())
        else:
            out.write(
                (
                    'Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n" % (name, filename)
                ).encode()
            )
        out.write(data)
        out.write(b"\r\n")
    out.write(b"--" + boundary.encode() + b"--\r\n")
    return "multipart/form-data; boundary=" + boundary, out.getvalue()


def handle_transform(model, meta, payload):
    import base64

    import pandas as pd

    mimetype = None if meta.get("mimetype_none") else meta.get("mimetype", "")
    if meta.get("format") == "mtx":
        mimetype = "text/mtx"
    sparse_colnames = _sparse_colnames(meta)
    if "read_input_data" in model.hooks:
        try:
            data = model.hooks["read_input_data"](payload)
        except Exception as exc:
            raise wrap_hook_error(exc, "Model 'read_input_data' hook failed to read input data.")
    else:
        data = read_structured_input(payload, mimetype, sparse_colnames)
    y = None
    if meta.get("y"):
        y = pd.read_csv(io.BytesIO(base64.b64decode(meta["y"])))
    if "transform" in model.hooks:
        try:
            out = model.hooks["transform"](data, model.model)
        except Exception as exc:
            raise wrap_hook_error(exc, "Model 'transform hook' failed to transform dataset.")
    else:
        try:
            out = pd.DataFrame(model.model.transform(data))
        except Exception as exc:
            raise wrap_hook_error(exc, "Failure when transforming data.")
    if isinstance(out, tuple):
        raise DrumCommonException("Transformation of the target variable is not supported by DRUM.")
    _validate_frame(out, "transform")
    if out.shape[0] != data.shape[0]:
        raise ValueError(
            "Transformation resulted in different number of rows than original data"
        )
    if meta.get("batch"):
        # drum score: the transformed frame as CSV, or printed as DRUM prints it.
        if _is_sparse_output(out):
            out = out.sparse.to_dense()
        text = out.to_csv(index=False)
        if meta.get("score_output") == "text":
            text = str(pd.read_csv(io.StringIO(text))) + "\n"
        return {"ok": True, "dtype": "bytes", "content_type": "text/csv"}, text.encode("utf-8")
    parts = []
    if _is_sparse_output(out):
        from scipy.io import mmwrite

        buf = io.BytesIO()
        mmwrite(buf, out.sparse.to_coo())
        parts.append(("X.format", None, b"sparse"))
        parts.append(("X.transformed", "X.transformed", buf.getvalue()))
        parts.append(
            ("X.colnames", "X.colnames", "\n".join(str(c) for c in out.columns).encode("utf-8"))
        )
    else:
        parts.append(("X.format", None, b"csv"))
        parts.append(("X.transformed", "X.transformed", _make_csv_payload(out)))
    if y is not None:
        parts.append(("y.format", None, b"csv"))
        parts.append(("y.transformed", "y.transformed", _make_csv_payload(y)))
    content_type, body = _multipart(parts)
    return {"ok": True, "dtype": "bytes", "content_type": content_type}, body


# ---------------------------------------------------------------------------------------------
# Unstructured (unstructured_helpers.py, PythonModelAdapter.predict_unstructured).


class QueryDict(dict):
    """Werkzeug's ImmutableMultiDict as far as hooks look: first values, getlist."""

    def __init__(self, pairs):
        super().__init__()
        self._lists = {}
        for k, v in pairs:
            self._lists.setdefault(k, []).append(v)
            if k not in self:
                dict.__setitem__(self, k, v)

    def getlist(self, key, type=None):
        values = self._lists.get(key, [])
        return [type(v) for v in values] if type else list(values)

    def lists(self):
        return iter(self._lists.items())

    def to_dict(self, flat=True):
        return dict(self) if flat else {k: list(v) for k, v in self._lists.items()}


def _is_text_mimetype(mimetype):
    return mimetype is not None and (mimetype.startswith("text/") or mimetype == "application/json")


def _headers_dict(meta):
    headers = {k: v for k, v in meta.get("headers") or []}
    if meta.get("traceparent") and not _otel_api():
        # Without opentelemetry the hook can still continue the trace from its headers.
        headers["traceparent"] = meta["traceparent"]
        if meta.get("tracestate"):
            headers["tracestate"] = meta["tracestate"]
    return headers


def handle_unstructured(model, meta, payload):
    hook = model.hooks.get("score_unstructured")
    mimetype = meta.get("mimetype") or ""
    charset = meta.get("charset") or None
    kwargs = {}
    if not mimetype:
        mimetype = "text/plain"
    if _is_text_mimetype(mimetype):
        charset = charset or "utf-8"
        data = bytes(payload).decode(charset)
    else:
        data = bytes(payload)
    kwargs["mimetype"] = mimetype
    if charset is not None:
        kwargs["charset"] = charset
    if meta.get("batch"):
        kwargs["query"] = dict(meta.get("query") or [])  # a plain dict, last value wins
    else:
        kwargs["query"] = QueryDict(meta.get("query") or [])
        kwargs["headers"] = _headers_dict(meta)
    if hook is None:
        raise TypeError("'NoneType' object is not callable")
    result = hook(model.model, data, **kwargs)

    response_kwargs = None
    if isinstance(result, tuple):
        if len(result) != 2:
            raise DrumCommonException(
                "In unstructured mode predictions of type tuple must have length = 2, but received length = {}".format(
                    len(result)
                )
            )
        result, response_kwargs = result
        if response_kwargs is not None and not isinstance(response_kwargs, dict):
            raise DrumCommonException(
                "In unstructured mode second element of the tuple must be a dict, but received: {}".format(
                    type(response_kwargs)
                )
            )
    if result is not None and not isinstance(result, (str, bytes)):
        raise DrumCommonException(
            "In unstructured mode predictions of type {} are not supported. Only str, bytes or None can be returned".format(
                type(result)
            )
        )
    response_kwargs = response_kwargs or {}
    out_mimetype = response_kwargs.get("mimetype")
    out_charset = response_kwargs.get("charset")
    if result is None and meta.get("batch"):
        body = b"Return value from prediction is: None (NULL in R)"
        out_mimetype = out_mimetype or "text/plain"
        out_charset = out_charset or "utf-8"
    elif result is None:
        body = b""
        out_mimetype = out_mimetype or "text/plain"
        out_charset = out_charset or "utf-8"
    elif isinstance(result, str):
        out_mimetype = out_mimetype or "text/plain"
        out_charset = out_charset or "utf-8"
        body = result.encode(out_charset)
    else:
        out_mimetype = out_mimetype or "application/octet-stream"
        body = result
    content_type = out_mimetype if not out_charset else "{}; charset={}".format(out_mimetype, out_charset)
    return {"ok": True, "dtype": "bytes", "content_type": content_type}, body


# ---------------------------------------------------------------------------------------------
# Chat and models (PythonPredictor.chat, prediction_server.py).


def _jsonify(value):
    """Flask 2.2's jsonify: sorted keys, compact, ASCII, a final newline."""
    return (json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n").encode()


def _hook_takes_headers(fn):
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    params = list(params)
    return any(p.kind == p.VAR_KEYWORD for p in params) or len(params) > 2


# Writes one piece of the current call's streamed answer (set by serve for each call).
_PARTIAL_WRITER = None


def handle_chat(model, meta, payload):
    import uuid

    params = json.loads(bytes(payload).decode("utf-8-sig"))
    hook = model.hooks.get("chat")
    association_id = params.get("datarobot_association_id", None) or str(uuid.uuid4())
    # An exception from the hook is answered as DRUM answers it: 500 "ERROR: <exc>", or
    # the status of a CustomHTTPError (error_reply).
    if _hook_takes_headers(hook):
        result = hook(params, model.model, headers=_headers_dict(meta))
    else:
        result = hook(params, model.model)

    if getattr(result, "object", None) == "chat.completion":
        doc = result.to_dict()
        doc["datarobot_association_id"] = association_id
        return {"ok": True, "dtype": "bytes", "content_type": "application/json"}, _jsonify(doc)

    try:
        it = iter(result)
    except TypeError:
        it = None
    first = None
    empty = False
    if it is not None:
        try:
            first = next(it)
        except StopIteration:
            empty = True
    if not empty and (
        first is None
        or not (
            type(first).__name__ == "ChatCompletionChunk"
            or getattr(first, "object", None) == "chat.completion.chunk"
        )
    ):
        raise DrumCommonException(
            "Expected response to be ChatCompletion or Iterable[ChatCompletionChunk]. Actual response type: {}".format(
                type(result)
            )
        )
    out = io.BytesIO()
    stream_error = ""
    partial = _PARTIAL_WRITER if meta.get("partials") else None
    if not empty:
        chunk = first
        try:
            while True:
                setattr(chunk, "datarobot_association_id", association_id)
                event = ("data: " + chunk.to_json(indent=None) + "\n\n").encode("utf-8")
                if partial is not None:
                    partial(event)  # sent at once: the client sees each chunk as it comes
                else:
                    out.write(event)
                chunk = next(it)
        except StopIteration:
            pass
        except Exception as exc:
            log("error", "chat stream failed: %r" % (exc,), traceback=traceback.format_exc())
            stream_error = str(exc) or type(exc).__name__
    if not stream_error:
        out.write(b"data: [DONE]\n\n")
    reply = {
        "ok": True,
        "dtype": "bytes",
        "content_type": "text/event-stream; charset=utf-8",
        "stream": True,
        "stream_error": stream_error,
    }
    return reply, out.getvalue()


def handle_models(model, meta, payload):
    hook = model.hooks.get("get_supported_llm_models")
    if hook is not None:
        items = hook(model.model)
        data = [m.to_dict() for m in items if getattr(m, "object", None) == "model"]
    else:
        data = []
        raw = os.environ.get("MLOPS_RUNTIME_PARAM_LLM_ID")
        if raw:
            try:
                llm_id = json.loads(raw).get("payload")
            except Exception:
                llm_id = raw
            if llm_id:
                data = [{"created": 1735689600, "id": llm_id, "object": "model", "owned_by": "DataRobot"}]
    body = _jsonify({"data": data, "object": "list"})
    return {"ok": True, "dtype": "bytes", "content_type": "application/json"}, body


def error_reply(exc):
    if is_user_error(exc):
        return {
            "ok": False,
            "status": int(getattr(exc, "status_code", 400) or 400),
            "message": str(exc),
            "user_error": True,
        }
    return {"ok": False, "status": 500, "message": "ERROR: " + str(exc), "user_error": False}


def handle_ping(model, meta, payload):
    """A round trip through the request loop: the worker's warm-up call, proving the
    channel and the loop work before the worker reports ready."""
    return {"ok": True, "pid": os.getpid()}, payload


# ---------------------------------------------------------------------------------------------
# Tracing: the worker sends the W3C trace context of its predictor-call span with each traced
# request. When the model's environment has opentelemetry, that context is made current around
# the hooks, so spans they start join the request's trace; otherwise hooks that receive headers
# find it there (_headers_dict).

_OTEL = None  # (context module, propagator) once looked up; False when not importable


def _otel_api():
    global _OTEL
    if _OTEL is None:
        try:
            from opentelemetry import context as otel_context
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

            _OTEL = (otel_context, TraceContextTextMapPropagator())
        except Exception:
            _OTEL = False
    return _OTEL


class _trace_context:
    """Makes the request's trace context current for the duration of a call (when traced
    and opentelemetry is importable; the import is tried only for a traced request)."""

    def __init__(self, meta):
        self._meta = meta
        self._token = None

    def __enter__(self):
        traceparent = self._meta.get("traceparent")
        api = _otel_api() if traceparent else None
        if api:
            otel_context, propagator = api
            carrier = {"traceparent": traceparent}
            if self._meta.get("tracestate"):
                carrier["tracestate"] = self._meta["tracestate"]
            self._token = otel_context.attach(propagator.extract(carrier))
            self._detach = otel_context.detach
        return self

    def __exit__(self, *exc):
        if self._token is not None:
            self._detach(self._token)
        return False


HANDLERS = {
    "predict": handle_predict,
    "score": handle_score,
    "ping": handle_ping,
    "transform": handle_transform,
    "unstructured": handle_unstructured,
    "chat": handle_chat,
    "models": handle_models,
}


def serve(model, reader, writer):
    while True:
        frame = reader.read()
        if frame is None:
            log("debug", "request channel closed; exiting")
            return 0
        kind, fid, meta_b, data = frame
        if kind == KIND_SHUTDOWN:
            log("debug", "shutdown requested")
            return 0
        if kind != KIND_REQUEST:
            log("warn", "ignoring frame of unexpected kind", kind=kind, id=fid)
            continue
        started = time.monotonic()
        global _PARTIAL_WRITER
        _PARTIAL_WRITER = lambda data, _fid=fid: writer.write(KIND_REPLY, _fid, {"partial": True}, data)
        try:
            meta = json.loads(meta_b or b"{}")
            op = meta.get("op", "predict")
            handler = HANDLERS.get(op)
            if handler is None:
                raise DrumCommonException("unknown predictor operation {!r}".format(op))
            with _trace_context(meta):
                reply, out = handler(model, meta, data)
        except (Exception, SystemExit) as exc:  # a request-level error never kills the bridge
            if not is_user_error(exc) and not isinstance(
                exc, (DrumCommonException, DrumPythonModelAdapterError)
            ):
                log("error", "prediction failed: %r" % (exc,), traceback=traceback.format_exc())
            reply, out = error_reply(exc), b""
        reply["elapsed_ms"] = round((time.monotonic() - started) * 1000, 3)
        writer.write(KIND_REPLY, fid, reply, out)


def _configure_logging(level):
    global _LOG_LEVEL, _LOG_FD
    _LOG_LEVEL = _LEVELS.get(str(level).lower(), 20)
    _LOG_FD = os.dup(2)
    os.set_inheritable(_LOG_FD, False)
    root = logging.getLogger()
    handler = _JSONLogHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    # DRUM's default --logging-level is warning: the user's info records stay quiet unless
    # the worker itself runs at debug.
    root.setLevel(logging.DEBUG if _LOG_LEVEL <= logging.DEBUG else max(_LOG_LEVEL, logging.WARNING))


def main(boot_meta):
    cfg = json.loads(boot_meta)
    _configure_logging(cfg.get("log_level", "info"))
    # The worker owns our lifetime: Ctrl-C in a terminal reaches the whole process group, and
    # the worker decides when we stop (Shutdown frame, EOF, or SIGKILL).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # User subprocesses must not inherit the protocol pipes.
    for fd in (REQUEST_FD, REPLY_FD):
        os.set_inheritable(fd, False)
    writer = FrameWriter(REPLY_FD)
    reader = FrameReader(REQUEST_FD)
    try:
        model = Model(cfg)
        model.load()
        hello = model.info()
    except BaseException as exc:  # SystemExit from user code is a load failure too
        tb = traceback.format_exc()
        log("error", "model load failed: %s" % (exc,), traceback=tb)
        own = isinstance(exc, (DrumCommonException, DrumPythonModelAdapterError))
        try:
            writer.write(
                KIND_HELLO,
                0,
                {
                    "ok": False,
                    "error": str(exc),
                    "error_type": "" if own else type(exc).__name__,
                    "traceback": tb,
                },
            )
        except OSError:
            pass
        return 1
    writer.write(KIND_HELLO, 0, hello)
    log("debug", "model loaded", predictor=hello["predictor"], hooks=hello["hooks"])
    try:
        return serve(model, reader, writer)
    except (BrokenPipeError, ConnectionResetError):
        return 0
