"""Times scikit-learn OneVsRestClassifier(LogisticRegression(C=3.16, solver='sag', max_iter=2000)) on the data
written by `cargo run --release -p emoclip --example bench_probe` (default dir target/bench_probe), as in
EmotionCLIP linear_eval.py (BoLD). Also times solver='lbfgs' and reports the max probability gap between them.
Usage: python bench/sklearn_probe.py [DATA_DIR]
"""
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier

d = sys.argv[1] if len(sys.argv) > 1 else "target/bench_probe"
n, f, k = map(int, open(f"{d}/shape.txt").read().split())
X = np.fromfile(f"{d}/x.f64", dtype="<f8").reshape(n, f)
Y = np.fromfile(f"{d}/y.u8", dtype=np.uint8).reshape(n, k).astype(np.int64)
res = {}
for solver in ["sag", "lbfgs"]:
    t = time.perf_counter()
    m = OneVsRestClassifier(LogisticRegression(C=3.16, solver=solver, max_iter=2000, random_state=0)).fit(X, Y)
    s = time.perf_counter() - t
    P = m.predict_proba(X)
    res[solver] = P
    print(f"sklearn OvR LogisticRegression(C=3.16, solver={solver}) {n}x{f}, {k} labels, 1 process: fit {s:.2f} s; "
          f"train mAP {100 * average_precision_score(Y, P, average='macro'):.4f} "
          f"AUC {100 * roc_auc_score(Y, P, average='macro'):.4f}")
print(f"max |P_sag - P_lbfgs(tol=1e-4)| = {np.abs(res['sag'] - res['lbfgs']).max():.2e}")
try:
    R = np.fromfile(f"{d}/p_rust.f64", dtype="<f8").reshape(n, k)
    for solver, P in res.items():
        print(f"max |P_rust - P_{solver}| = {np.abs(R - P).max():.2e}; macro mAP diff "
              f"{100 * abs(average_precision_score(Y, R) - average_precision_score(Y, P)):.2e}, macro AUC diff "
              f"{100 * abs(roc_auc_score(Y, R) - roc_auc_score(Y, P)):.2e} (x100 points)")
except FileNotFoundError:
    pass
