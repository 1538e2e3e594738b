"""The benchmark baseline: the smallest honest Python model server.

A Flask app, run by gunicorn (sync workers, as many as drum's), that does what every
Python model server does per request: pandas.read_csv on the body (raw CSV or the "X"
part of a multipart form), model.predict (plus predict_proba for classifiers) and JSON.
The model is the pickle in $BASELINE_MODEL_DIR (model.pkl), loaded once per worker.

    BASELINE_MODEL_DIR=... gunicorn -w 2 -b 127.0.0.1:PORT --chdir scripts/bench baseline_app:app
"""
import io
import os
import pickle
import sys

import pandas as pd
from flask import Flask, Response, request

MODEL_DIR = os.environ.get("BASELINE_MODEL_DIR", ".")
with open(os.path.join(MODEL_DIR, "model.pkl"), "rb") as f:
    model = pickle.load(f)
IS_CLASSIFIER = hasattr(model, "predict_proba")
# The harness counts these lines: one per worker that has loaded the model.
print("baseline worker ready: pid %d" % os.getpid(), file=sys.stderr, flush=True)

app = Flask(__name__)


def _frame():
    if request.files:
        part = request.files.get("X") or next(iter(request.files.values()))
        return pd.read_csv(part.stream)
    return pd.read_csv(io.BytesIO(request.get_data()))


@app.route("/ping/")
def ping():
    return {"message": "OK"}


@app.route("/predict/", methods=["POST"])
@app.route("/predictions/", methods=["POST"])
def predict():
    df = _frame()
    if IS_CLASSIFIER:
        proba = model.predict_proba(df)
        labels = [str(c) for c in model.classes_]
        out = pd.DataFrame(proba, columns=labels).to_json(orient="records")
    else:
        out = pd.Series(model.predict(df).astype(float)).to_json(orient="values")
    return Response('{"predictions":' + out + "}", mimetype="application/json")
