"""``GET /``: one small page with a form for one example, answered in place by ``POST /predict``.

Tables get one field per feature column (numbers for numeric columns; an empty field is a
missing value, filled as in training), text a text box, images and series an upload. The page is
self-contained (no external scripts or styles), every name from the run is escaped, and the
answer is written with ``textContent``, never as HTML.

Example:
    >>> html = form_page(schema, "digits-mlp", "multiclass", classes)
"""

from __future__ import annotations

import json
from html import escape

from trainwright.serve.schema import RowSchema

STYLE = """
body { font: 15px/1.4 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
label { display: block; margin: .5rem 0 .1rem; font-weight: 600; }
input[type=text], input[type=number], textarea { width: 100%; padding: .3rem; box-sizing: border-box; }
button { margin-top: 1rem; padding: .4rem 1.2rem; }
table { border-collapse: collapse; margin-top: 1rem; } td, th { border: 1px solid #ccc; padding: .2rem .6rem; text-align: left; }
#error { color: #a00; white-space: pre-wrap; } small { color: #666; }
"""

SCRIPT = """
const spec = JSON.parse(document.getElementById("spec").textContent);
const form = document.getElementById("form"), result = document.getElementById("result");
const error = document.getElementById("error");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  result.dataset.state = "waiting"; result.replaceChildren(); error.textContent = "";
  let request;
  if (spec.upload) {
    const body = new FormData();
    for (const file of form.querySelector("input[type=file]").files) body.append("file", file);
    request = {method: "POST", body};
  } else {
    const row = {};
    for (const field of form.querySelectorAll("[data-column]")) {
      const value = field.value;
      row[field.dataset.column] = field.dataset.kind === "numeric" ? (value.trim() === "" ? null : Number(value))
                                : (field.dataset.kind !== "text" && value === "" ? null : value);
    }
    request = {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify([row])};
  }
  try {
    const response = await fetch("predict", request);
    const answer = await response.json();
    if (!response.ok) {
      const detail = answer.detail;
      error.textContent = typeof detail === "string" ? detail : (detail && detail.message) || JSON.stringify(detail);
      result.dataset.state = "error";
      return;
    }
    const rows = answer.predictions, shown = spec.forecast ? rows : rows.slice(0, 1);
    const keys = Object.keys(shown[0]).filter(k => spec.forecast || k === spec.prediction || k.startsWith("probability_"));
    const table = document.createElement("table");
    const head = table.insertRow();
    for (const key of keys) { const th = document.createElement("th"); th.textContent = key; head.appendChild(th); }
    for (const row of shown) {
      const tr = table.insertRow();
      for (const key of keys) {
        const value = row[key];
        tr.insertCell().textContent = typeof value === "number" && !Number.isInteger(value) ? value.toFixed(4) : String(value);
      }
    }
    result.appendChild(table);
    result.dataset.state = "done";
  } catch (failure) {
    error.textContent = String(failure); result.dataset.state = "error";
  }
});
"""


def _field(column, index: int) -> str:
    name, ident = escape(column.name), f"field-{index}"
    attrs = f'id="{ident}" data-column="{name}" data-kind="{column.kind}"'
    if column.kind == "numeric":
        return f'<label for="{ident}">{name}</label><input type="number" step="any" {attrs}>'
    if column.kind == "text":
        return f'<label for="{ident}">{name}</label><textarea rows="5" {attrs}></textarea>'
    return f'<label for="{ident}">{name} <small>({column.kind})</small></label><input type="text" {attrs}>'


def form_page(schema: RowSchema, title: str, task: str, classes: list, lookback: int | None = None) -> str:
    upload = schema.modality in ("images", "series")
    if schema.modality == "images":
        fields = '<label for="file">image</label><input type="file" id="file" name="file" accept="image/*">'
    elif schema.modality == "series":
        need = f"at least the last {lookback} rows" if lookback else "the latest rows"
        columns = ", ".join(escape(c) for c in schema.names)
        fields = (f'<label for="file">table <small>(CSV with {columns}: {need})</small></label>'
                  f'<input type="file" id="file" name="file" accept=".csv,.tsv,.parquet,.jsonl">')
    else:
        fields = "\n".join(_field(column, i) for i, column in enumerate(schema.columns))
    spec = {"upload": upload, "forecast": schema.modality == "series", "prediction": "prediction"}
    spec_json = json.dumps(spec).replace("<", "\\u003c")  # cannot close the script element
    what = f"{task}" + (f": {', '.join(escape(str(c)) for c in classes[:20])}" if classes else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} - trainwright</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p><small>{what}. The same predictions as <code>POST /predict</code>; the API is described at <a href="docs">docs</a>.</small></p>
<form id="form">
{fields}
<button type="submit">Predict</button>
</form>
<div id="result" data-state="idle"></div>
<p id="error"></p>
<script type="application/json" id="spec">{spec_json}</script>
<script>{SCRIPT}</script>
</body></html>
"""
