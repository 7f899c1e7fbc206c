"""The digits workload of ``digits_torch.py`` through Keras 3 on its torch backend: import, load, train, evaluate.

The same data, split, standardization, MLP widths, batch, Adam (Keras's own), epochs and
per-epoch validation, then the same test metrics. ``verbose=0``: no progress output.

    python benchmarks/scripts/digits_keras.py [EPOCHS]
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # after choosing the backend
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

EPOCHS, BATCH, LR = int(sys.argv[1]) if len(sys.argv) > 1 else 30, 64, 1e-3

x, y = load_digits(return_X_y=True)
x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0)
scaler = StandardScaler().fit(x_train)
xt, xv, xs = (scaler.transform(a).astype("float32") for a in (x_train, x_val, x_test))

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                          keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
model.compile(optimizer=keras.optimizers.Adam(LR), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
history = model.fit(xt, y_train, batch_size=BATCH, epochs=EPOCHS, validation_data=(xv, y_val), verbose=0)
print(f"epoch {EPOCHS}: val loss {history.history['val_loss'][-1]:.4f}")

probs = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(xs, verbose=0)))
pred = probs.argmax(1)
precision, recall, f1, _ = precision_recall_fscore_support(y_test, pred, average="macro", zero_division=0)
auroc = roc_auc_score(y_test, probs, multi_class="ovr", average="macro")
print(f"test: accuracy {accuracy_score(y_test, pred):.4f}, precision {precision:.4f}, recall {recall:.4f}, "
      f"f1 {f1:.4f}, auroc {auroc:.4f}")
