"""The digits workload written by hand in plain PyTorch: import, load, train, evaluate.

What a careful practitioner writes for the job ``trainwright train`` does in ``whole_process.py``:
scikit-learn's digits, a stratified 70/15/15 split, standardization fitted on the training rows, an
MLP 64-256-256-10 (ReLU, torch's init), batch 64, 30 epochs of Adam (lr 1e-3, torch's fused kernel,
as trainwright uses), a validation pass (loss and accuracy) after each epoch, then the test split's
accuracy, macro precision, recall, F1 and one-vs-rest AUROC. No estimate, baselines, report or
diagnosis: those are what trainwright adds.

    python benchmarks/scripts/digits_torch.py [EPOCHS]
"""

import sys

import torch
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F

EPOCHS, BATCH, LR = int(sys.argv[1]) if len(sys.argv) > 1 else 30, 64, 1e-3

# Load and split 70/15/15, stratified; standardize with the training rows' statistics.
x, y = load_digits(return_X_y=True)
x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0)
scaler = StandardScaler().fit(x_train)
xt, xv, xs = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (x_train, x_val, x_test))
yt, yv = torch.tensor(y_train), torch.tensor(y_val)

# Model and optimizer, seeded.
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
generator = torch.Generator().manual_seed(0)

# Train: shuffle once per epoch, slice batches, validate after each epoch.
for epoch in range(1, EPOCHS + 1):
    model.train()
    perm = torch.randperm(len(xt), generator=generator)
    xe, ye = xt[perm], yt[perm]
    total = torch.zeros(())
    for i in range(0, len(xe), BATCH):
        loss = F.cross_entropy(model(xe[i : i + BATCH]), ye[i : i + BATCH])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(xe[i : i + BATCH])
    model.eval()
    with torch.no_grad():
        out = model(xv)
        val_loss, val_acc = F.cross_entropy(out, yv).item(), (out.argmax(1) == yv).float().mean().item()
    train_loss = (total / len(xt)).item()
print(f"epoch {EPOCHS}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, val accuracy {val_acc:.4f}")

# Evaluate on the untouched test split.
with torch.no_grad():
    probs = model(xs).softmax(1).numpy()
pred = probs.argmax(1)
precision, recall, f1, _ = precision_recall_fscore_support(y_test, pred, average="macro", zero_division=0)
auroc = roc_auc_score(y_test, probs, multi_class="ovr", average="macro")
print(f"test: accuracy {accuracy_score(y_test, pred):.4f}, precision {precision:.4f}, recall {recall:.4f}, "
      f"f1 {f1:.4f}, auroc {auroc:.4f}")
