// edgebnn demo page: draw (grey models) or upload (any model), POST the
// image bytes to /api/classify, show the top-3 and the latency.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;
let ink = "#fff", paper = "#000";     // set from the model's "invert" flag

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function renderTop(prefix, listId, result) {
  const best = result.top[0];
  $(prefix + "-label").textContent = best.label;
  $(prefix + "-prob").textContent = (100 * best.probability).toFixed(1) + "%";
  const list = $(listId);
  list.replaceChildren();
  for (const t of result.top) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = t.label;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = (100 * t.probability).toFixed(1) + "%";
    const p = document.createElement("span");
    p.className = "prob";
    p.textContent = (100 * t.probability).toFixed(1) + "%";
    li.append(name, bar, p);
    list.append(li);
  }
}

async function classify(blob) {
  showError("");
  $("status").textContent = "classifying\u2026";
  let reply, body;
  try {
    reply = await fetch("/api/classify", { method: "POST", body: blob,
      headers: { "Content-Type": blob.type || "application/octet-stream" } });
    body = await reply.json();
  } catch (e) {
    $("status").textContent = "";
    showError("request failed: " + e);
    return;
  }
  $("status").textContent = "";
  if (!reply.ok) {
    showError(body.error || ("error " + reply.status));
    return;
  }
  renderTop("result", "top3", body);
  $("latency").textContent = body.latency_ms.toFixed(2) + " ms";
  if (body.tflite) {
    renderTop("tflite", "tflite-top3", body.tflite);
    $("tflite-latency").textContent = body.tflite.latency_ms.toFixed(2) + " ms";
  }
  $("status").textContent = "decoded and resized in " + body.decode_ms.toFixed(1) + " ms";
}

// ---------------------------------------------------------------- drawing
const pad = $("pad");
const ctx = pad.getContext("2d");
let drawing = false, last = null, inked = false;

function clearPad() {
  ctx.fillStyle = paper;
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
}

function point(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (ev) => {
  drawing = true;
  last = point(ev);
  pad.setPointerCapture(ev.pointerId);
});
pad.addEventListener("pointermove", (ev) => {
  if (!drawing) return;
  const p = point(ev);
  ctx.strokeStyle = ink;
  ctx.lineWidth = 22;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(last[0], last[1]);
  ctx.lineTo(p[0], p[1]);
  ctx.stroke();
  last = p;
  inked = true;
});
for (const e of ["pointerup", "pointercancel"]) pad.addEventListener(e, () => { drawing = false; });

// MNIST digits sit in a 20x20 box centred in 28x28: crop the drawing to its
// ink and place it the same way, so the model sees what it was trained on.
function digitBlob() {
  const { data } = ctx.getImageData(0, 0, pad.width, pad.height);
  const bg = paper === "#000" ? 0 : 255;
  let x0 = pad.width, y0 = pad.height, x1 = -1, y1 = -1;
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      if (Math.abs(data[4 * (y * pad.width + x)] - bg) > 40) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return Promise.resolve(null);
  const out = document.createElement("canvas");
  out.width = out.height = 112;
  const o = out.getContext("2d");
  o.fillStyle = paper;
  o.fillRect(0, 0, 112, 112);
  const w = x1 - x0 + 1, h = y1 - y0 + 1, s = 80 / Math.max(w, h);
  o.drawImage(pad, x0, y0, w, h, 56 - w * s / 2, 56 - h * s / 2, w * s, h * s);
  return new Promise((resolve) => out.toBlob(resolve, "image/png"));
}

$("classify-drawing").addEventListener("click", async () => {
  const blob = inked ? await digitBlob() : null;
  if (!blob) { showError("draw a digit first"); return; }
  await classify(blob);
});
$("clear").addEventListener("click", clearPad);

// ---------------------------------------------------------------- uploads
function useFile(file) {
  if (!file) return;
  if (info && file.size > info.max_upload_bytes) {
    showError("file is larger than " + (info.max_upload_bytes >> 20) + " MiB");
    return;
  }
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  classify(file);
}

$("file").addEventListener("change", (ev) => useFile(ev.target.files[0]));
const zone = $("drop-zone");
zone.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (ev) => {
  ev.preventDefault();
  zone.classList.remove("over");
  useFile(ev.dataTransfer.files[0]);
});

// ---------------------------------------------------------------- start
fetch("/api/info").then((r) => r.json()).then((i) => {
  info = i;
  if (i.invert) { ink = "#000"; paper = "#fff"; }
  $("model-info").textContent = i.model + " \u2014 " + i.labels.length + " classes, input " +
    i.input_shape.join("\u00d7") + ", " + i.executor +
    (i.tflite ? ", float twin " + i.tflite : "");
  if (i.kind === "digits") {
    $("draw-box").hidden = false;
    $("upload-title").textContent = "Or upload a picture of a digit";
  }
  $("tflite-result").hidden = !i.tflite;
  clearPad();
  document.body.dataset.ready = "1";
}).catch((e) => showError("cannot reach the server: " + e));
