"""Train the example model: scikit-learn's bundled diabetes data set (442 patients,
10 features, disease progression after one year), so no download is needed.

Writes, next to this file:
  model.pkl   a drop-in scikit-learn Pipeline (StandardScaler + GradientBoostingRegressor)
  sample.csv  five rows to score, in the column layout the model expects

Run with an interpreter that has pandas and scikit-learn, e.g. /usr/bin/python3 on Debian.
"""
import os
import pickle

from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

here = os.path.dirname(os.path.abspath(__file__))
data = load_diabetes(as_frame=True)
X, y = data.data, data.target

model = make_pipeline(StandardScaler(), GradientBoostingRegressor(n_estimators=100, random_state=0))
model.fit(X, y)

with open(os.path.join(here, "model.pkl"), "wb") as f:
    pickle.dump(model, f)
X.head(5).to_csv(os.path.join(here, "sample.csv"), index=False)
print(f"trained on {len(X)} rows, R^2 on training data {model.score(X, y):.3f}; wrote model.pkl and sample.csv")
