"""The digits workload of ``digits_torch.py`` through Lightning: import, load, train, evaluate.

The same data, split, standardization, MLP (seeded the same way), batch, Adam (Lightning's default:
torch's own, not fused), epochs and per-epoch validation, then the same test metrics. Lightning in
its fastest setting: no logger, checkpoints, progress bar or model summary.

    python benchmarks/scripts/digits_lightning.py [EPOCHS]
"""

import logging
import sys
import warnings

import lightning as L
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

EPOCHS, BATCH, LR = int(sys.argv[1]) if len(sys.argv) > 1 else 30, 64, 1e-3
for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(name).setLevel(logging.ERROR)  # its banner lines
warnings.filterwarnings("ignore", module="lightning")

x, y = load_digits(return_X_y=True)
x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.3, stratify=y, random_state=0)
x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=0)
scaler = StandardScaler().fit(x_train)
xt, xv, xs = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (x_train, x_val, x_test))
yt, yv = torch.tensor(y_train), torch.tensor(y_val)


class Digits(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    def training_step(self, batch, _):
        return F.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch, _):
        out = self.net(batch[0])
        self.log_dict({"val_loss": F.cross_entropy(out, batch[1]), "val_acc": (out.argmax(1) == batch[1]).float().mean()})

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=LR)


module = Digits()
trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
trainer.fit(module, DataLoader(TensorDataset(xt, yt), batch_size=BATCH, shuffle=True),
            DataLoader(TensorDataset(xv, yv), batch_size=len(xv)))
print(f"epoch {EPOCHS}: val loss {float(trainer.callback_metrics['val_loss']):.4f}")

module.eval()
with torch.no_grad():
    probs = module.net(xs).softmax(1).numpy()
pred = probs.argmax(1)
precision, recall, f1, _ = precision_recall_fscore_support(y_test, pred, average="macro", zero_division=0)
auroc = roc_auc_score(y_test, probs, multi_class="ovr", average="macro")
print(f"test: accuracy {accuracy_score(y_test, pred):.4f}, precision {precision:.4f}, recall {recall:.4f}, "
      f"f1 {f1:.4f}, auroc {auroc:.4f}")
