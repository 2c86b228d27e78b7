"""Layer-by-layer equivalence of a Keras model and its exported plan.

For every op of the folded plan whose output is a Keras layer's output, the
op is run (edgebnn_export.folded_numpy, the folded semantics) on the Keras values
of its inputs -- "teacher forcing", so a difference is pinned to the one op
that makes it -- and its output is compared with the Keras layer's output:

- float outputs must agree within twice the worst-case float32 rounding
  bound of the unfolded formula (export.reference);
- bits outputs must equal sign() of the Keras value, except where that
  value ("pre-sign") lies within the same bound of zero: such a bit may
  flip either way, and every flip is listed with its pre-sign value and
  the bound used.

Each Keras layer is also checked against the float64 evaluation of the op
it was converted to (the converter's own mistakes show up there). Then the
whole file runs end to end for top-1 agreement and the largest logit
difference. Anything else that differs fails, naming the first op.
"""
import numpy as np

from edgebnn import fold as foldmod

from . import folded_numpy
from .reference import TINY, U, evaluate

REAL_TOP1_MIN = 0.999


class Flip:
    def __init__(self, op, layer, sample, index, presign, bound):
        self.op, self.layer, self.sample = op, layer, int(sample)
        self.index = [int(i) for i in index]
        self.presign, self.bound = presign, bound

    def __str__(self):
        return (f"{self.op} (layer {self.layer}) sample {self.sample} at {list(self.index)}: "
                f"pre-sign value {self.presign:.9g}, within rounding bound {self.bound:.3g}")


class FreeFlip:
    """A binarized value differing from Keras when the file runs end to end."""

    def __init__(self, op, sample, index, keras_pre, ours_pre, cause):
        self.op, self.sample, self.index = op, int(sample), [int(i) for i in index]
        self.keras_pre, self.ours_pre, self.cause = keras_pre, ours_pre, cause

    def __str__(self):
        ours = "" if self.ours_pre is None else f", edgebnn {self.ours_pre:.9g}"
        return (f"{self.op} sample {self.sample} at {list(self.index)}: Keras pre-sign "
                f"{self.keras_pre:.9g}{ours} ({self.cause})")


class OpCheck:
    """Result for one plan op."""

    def __init__(self, op, layer, kind, sources):
        self.op, self.layer, self.kind, self.sources = op, layer, kind, sources
        self.elements = 0  # compared values
        self.worst = 0.0            # largest |ours - keras| / allowed (float), <= 1 passes
        self.max_diff = 0.0
        self.flips = []
        self.violations = []        # messages

    def fail(self, msg):
        if len(self.violations) < 5:
            self.violations.append(msg)


class Report:
    def __init__(self, source, samples):
        self.source, self.samples = source, samples
        self.ops = []
        self.top1_agreement = None
        self.max_logit_diff = None
        self.keras_accuracy = self.file_accuracy = None
        self.executor = None
        self.free_flips = []
        self.top1_strict, self.ties = None, 0
        self.run_vs_steps = 0.0

    @property
    def flips(self):
        return [f for c in self.ops for f in c.flips]

    @property
    def first_failure(self):
        return next((c for c in self.ops if c.violations), None)

    @property
    def passed(self):
        if self.first_failure is not None:
            return False
        return self.source != "real" or self.top1_agreement >= REAL_TOP1_MIN

    def failure_message(self):
        c = self.first_failure
        if c is not None:
            return (f"equivalence check failed: first diverging op {c.op!r} (Keras layer "
                    f"{c.layer!r}): {c.violations[0]}")
        if not self.passed:
            return (f"equivalence check failed: top-1 agreement {self.top1_agreement:.4%} on "
                    f"real inputs is under {REAL_TOP1_MIN:.1%}")
        return None

    def text(self):
        lines = [(f"equivalence on {self.samples} {self.source} input(s), executor "
                  f"{self.executor}; layer by layer (each op fed the Keras values of its "
                  "inputs):"),
                 (f"  {'op':<28} {'kind':<5} {'elements':>10} {'max|diff|':>11} "
                  f"{'diff/bound':>10} {'flips':>6}  status")]
        for c in self.ops:
            status = "FAIL" if c.violations else "ok"
            ratio = "-" if c.kind == "bits" else f"{c.worst:.3g}"
            diff = "-" if c.kind == "bits" else f"{c.max_diff:.3g}"
            lines.append(f"  {c.op[:28]:<28} {c.kind:<5} {c.elements:>10,} {diff:>11} "
                         f"{ratio:>10} {len(c.flips):>6}  {status}")
            for v in c.violations:
                lines.append(f"      {v}")
        flips = self.flips
        lines.append(f"binarized activations that differ: {len(flips)} (all within float32 "
                     "rounding of the sign threshold)" if flips else
                     "binarized activations that differ: none")
        for f in flips:
            lines.append(f"  flip: {f}")
        ties = (f" (strict {self.top1_strict:.4%}; {self.ties} sample(s) differ only by "
                "float32 rounding, no binarized value differing: ties in Keras's outputs)"
                ) if self.ties else ""
        lines.append(f"end to end: top-1 agreement {self.top1_agreement:.4%}{ties}, largest "
                     f"output difference {self.max_logit_diff:.3g}")
        causes = {}
        for f in self.free_flips:
            causes[f.cause] = causes.get(f.cause, 0) + 1
        lines.append(f"the runtime's own run vs the op-by-op run: largest difference "
                     f"{self.run_vs_steps:.3g}")
        lines.append(f"end to end, binarized values that differ from Keras: "
                     f"{len(self.free_flips)}" + (" (" + ", ".join(
                         f"{n} {c}" for c, n in sorted(causes.items())) + ")" if causes else ""))
        for f in self.free_flips:
            lines.append(f"  {f}")
        if self.keras_accuracy is not None:
            lines.append(f"accuracy vs labels: Keras {self.keras_accuracy:.4%}, "
                         f"exported file {self.file_accuracy:.4%}")
        lines.append("PASSED" if self.passed else self.failure_message())
        return "\n".join(lines)


def _keras_model_class(model):
    for mod in ("keras", "tf_keras"):
        try:
            cls = __import__(mod).Model
        except ImportError:
            continue
        if isinstance(model, cls):
            return cls
    raise TypeError(f"{type(model)} is not a Keras model")


class _Stepper:
    """Runs single plan ops in the folded semantics in numpy
    (edgebnn_export.folded_numpy: one op at a time, fed Keras's values), and
    `run`, the whole file end to end: through the runtime's Model (the
    compiled engine) with backend "auto" when the engine is built, or in
    numpy with backend "numpy"."""

    def __init__(self, plan, backend):
        if backend not in ("auto", "numpy"):
            raise ValueError(f"backend must be 'auto' or 'numpy', not {backend!r}")
        self.plan, self.model = plan, None
        if backend == "auto":
            try:
                from edgebnn.model import Model
                self.model = Model(plan)
            except (ImportError, ValueError):
                self.model = None
        self.name = ("numpy ops, file end to end on the engine" if self.model is not None
                     else "numpy (folded semantics)")

    def run(self, x):
        if self.model is not None:
            return self.model.run(np.ascontiguousarray(x, np.float32))
        vals = {self.plan.input.name: np.asarray(x, np.float32)}
        for op in self.plan.ops:
            vals[op.name] = folded_numpy.step(op, [vals[n] for n in op.inputs])
        return vals[self.plan.output]

    def feed(self, value, kind, negate):
        """A tensor in the executor's representation."""
        if kind != "bits":
            return np.ascontiguousarray(value, np.float32)
        neg = value < 0
        if negate is not None:
            neg = neg ^ negate
        return np.where(neg, -1.0, 1.0).astype(np.float32)

    def step(self, op, ins):
        return np.asarray(folded_numpy.step(op, ins), np.float64)


def _negated_channels(graph):
    """{tensor: bool mask} of bits tensors that folding stores inverted
    (conv -> maxpool -> batchnorm with gamma < 0; see fold._pool_pattern)."""
    out = {}
    for op in graph.ops:
        pattern = foldmod._pool_pattern(graph, op)
        if pattern is not None and pattern[3] is not None:
            last = pattern[2] or pattern[1]
            out[last.name] = pattern[3]
    return out


class Checker:
    def __init__(self, keras_model, conversion, backend="auto"):
        self.model, self.conv = keras_model, conversion
        self.graph = conversion.graph
        self.plan = foldmod.fold(self.graph)
        self.stepper = _Stepper(self.plan, backend)
        self.negated = _negated_channels(self.graph)
        ck = conversion.checkpoints
        self.input = self.graph.input.name
        self.comparable = {self.input}
        for op in self.plan.ops:
            origin = self.plan.origin.get(op.name, [op.name])
            if op.name in ck and origin[-1] == op.name:
                self.comparable.add(op.name)
        layers = [n for n in ck if n != self.input]
        cls = _keras_model_class(keras_model)
        self.layer_names = layers
        outs = [keras_model.get_layer(ck[n]).output for n in layers]
        self.probe = cls(keras_model.inputs[0], outs)
        self.checks = []
        for op in self.plan.ops:
            if op.name in self.comparable:
                self.checks.append(OpCheck(op.name, ck[op.name], op.kind,
                                           self._chain(op)))

    def _chain(self, op):
        """Source ops (graph order) computing plan op `op` from tensors the
        Keras model provides."""
        names, todo = set(), [op.name]
        while todo:
            n = todo.pop()
            names.update(self.plan.origin.get(n, [n]))
            for i in self.plan.by_name[n].inputs:
                if i not in self.comparable:
                    todo.append(i)
        return [o for o in self.graph.ops if o.name in names]

    def _keras_values(self, x):
        outs = self.probe(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        vals = {n: np.asarray(o, np.float64) for n, o in zip(self.layer_names, outs)}
        vals[self.input] = np.asarray(x, np.float64)
        return vals

    def _run_chunk(self, x, checks, n0):
        kv = self._keras_values(x)
        self._teacher = {}      # teacher-forced outputs, for the free run
        ours = {}
        it = iter(checks)
        for op in self.plan.ops:
            ins = []
            for name in op.inputs:
                if name in self.comparable:
                    kind = "float" if name == self.input else self.plan.by_name[name].kind
                    ins.append(self.stepper.feed(kv[name], kind, self.negated.get(name)))
                else:
                    ins.append(ours[name])
            out = self.stepper.step(op, ins)
            if op.name not in self.comparable:
                ours[op.name] = self.stepper.feed(out, op.kind, None) if op.kind == "bits" \
                    else out.astype(np.float32)
                continue
            self._teacher[op.name] = out
            self._compare(next(it), op, out, kv, n0)
        return kv

    def _compare(self, check, op, out, kv, n0):
        ref, err = {}, {}
        for src in check.sources:
            xs = [ref[i] if i in ref else kv[i] for i in src.inputs]
            es = [err[i] if i in err else np.zeros_like(kv[i]) for i in src.inputs]
            ref[src.name], err[src.name] = evaluate(src, xs, es, src.name in self.conv.float_acc)
            if src.name in kv and src.type != "sign":
                # the converter: Keras must compute the op's formula
                bad = np.abs(kv[src.name] - ref[src.name]) > err[src.name] * (1 + 1e-6) + TINY
                if np.any(bad):
                    idx = np.argwhere(bad)[0]
                    check.fail(f"Keras layer {self.conv.checkpoints[src.name]!r} computes "
                               f"{kv[src.name][tuple(idx)]:.9g} at sample {n0 + idx[0]} "
                               f"{idx[1:].tolist()}, the converted op {src.name!r} "
                               f"{ref[src.name][tuple(idx)]:.9g} (bound "
                               f"{err[src.name][tuple(idx)]:.3g}): the conversion does not "
                               "match the layer")
        keras = kv[op.name]
        check.elements += keras.size
        if op.kind == "bits":
            src = self.graph.by_name[op.name]
            pre = src.inputs[0] if src.type == "sign" else op.name
            presign = kv.get(pre, ref.get(pre))
            bound = 2 * err.get(pre, np.zeros_like(presign)) + 2 * TINY
            ours_neg = out < 0
            if op.name in self.negated:
                ours_neg = ours_neg ^ self.negated[op.name]
            differ = ours_neg != (presign < 0)
            for idx in np.argwhere(differ):
                i = tuple(idx)
                if abs(presign[i]) <= bound[i]:
                    check.flips.append(Flip(op.name, check.layer, n0 + idx[0], idx[1:],
                                            presign[i], bound[i]))
                else:
                    check.fail(f"bit differs at sample {n0 + idx[0]} {idx[1:].tolist()}: "
                               f"pre-sign value {presign[i]:.9g} is outside the rounding "
                               f"bound {bound[i]:.3g}")
            return
        allowed = 2 * err[op.name] * (1 + 1e-6) + np.abs(keras) * 2 * U + 2 * TINY
        diff = np.abs(out - keras)
        check.max_diff = max(check.max_diff, float(diff.max(initial=0)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(diff > 0, diff / allowed, 0.0)
        check.worst = max(check.worst, float(np.nan_to_num(ratio, nan=np.inf).max(initial=0)))
        if np.any(diff > allowed):
            idx = np.argwhere(diff > allowed)[0]
            i = tuple(idx)
            check.fail(f"value {out[i]:.9g} vs Keras {keras[i]:.9g} at sample {n0 + idx[0]} "
                       f"{idx[1:].tolist()}: difference {diff[i]:.3g} exceeds the rounding "
                       f"bound {allowed[i]:.3g}")

    def _free_run(self, x, kv, n0, report):
        """The plan end to end on its own values (Model.run_layers where the
        runtime has it, else op by op as above); every binarized value
        (bits outputs, and the sign() a binary op applies to a float input)
        that differs from Keras is recorded. Each is either a flip of the
        op itself (its teacher-forced result differs the same way: checked
        against the rounding bound above) or propagated from earlier
        differences (the op's inputs already differ from Keras's)."""
        vals = {self.input: self.stepper.feed(x, "float", None)}
        flipped = set()           # samples with a differing binarized value so far
        # the runtime's own per-layer values (engine), where it offers them
        run_layers = getattr(self.stepper.model, "run_layers", None)
        engine_vals = run_layers(np.ascontiguousarray(x, np.float32)) if run_layers else {}
        for op in self.plan.ops:
            new = []
            if op.name in engine_vals:
                out = np.asarray(engine_vals[op.name], np.float64).reshape(
                    (len(x),) + tuple(op.shape))
            else:
                out = self.stepper.step(op, [vals[n] for n in op.inputs])
            vals[op.name] = self.stepper.feed(out, op.kind, None) if op.kind == "bits" \
                else out.astype(np.float32)
            if op.name in self.comparable and op.kind == "bits":
                neg = out < 0
                teacher = self._teacher[op.name] < 0
                if op.name in self.negated:
                    neg, teacher = neg ^ self.negated[op.name], teacher ^ self.negated[op.name]
                src = self.graph.by_name[op.name]
                pre = kv[src.inputs[0] if src.type == "sign" else op.name]
                for idx in np.argwhere(neg != (pre < 0)):
                    i = tuple(idx)
                    cause = "own flip" if neg[i] == teacher[i] else (
                        "after an earlier flip" if n0 + idx[0] in flipped else
                        "within accumulated rounding")
                    new.append(FreeFlip(op.name, n0 + idx[0], idx[1:], pre[i], None, cause))
            a = op.attrs
            if a.get("scheme") == "binary" and \
                    op.inputs[0] in self.comparable and op.inputs[0] != self.input and \
                    self.plan.by_name[op.inputs[0]].kind == "float":
                name = op.inputs[0]
                ours, theirs = vals[name], kv[name]
                for idx in np.argwhere((ours < 0) != (theirs < 0)):
                    i = tuple(idx)
                    # the values of a sample without earlier flips differ from
                    # Keras's only by float32 rounding, each op checked above
                    cause = "after an earlier flip" if n0 + idx[0] in flipped else \
                        "within accumulated rounding"
                    new.append(FreeFlip(f"{op.name} (sign of input {name})", n0 + idx[0],
                                        idx[1:], theirs[i], float(ours[i]), cause))
            report.free_flips.extend(new)
            flipped.update(f.sample for f in new)
        return vals[self.plan.output]

    def _per_sample_floats(self):
        """Largest float64 work array of the reference per sample (im2col)."""
        big = 1
        for op in self.graph.ops:
            n = int(np.prod(op.shape))
            if op.type == "conv2d":
                n = int(np.prod(op.shape[:2])) * op.fan_in * int(np.prod(op.attrs["kernel"]))
            big = max(big, n)
        return big

    def run(self, x, labels=None, source="random", chunk=None):
        """x: float32 [N, *input] model inputs; labels: int [N] or None."""
        x = np.ascontiguousarray(x, np.float32)
        report = Report(source, len(x))
        report.executor = self.stepper.name
        if chunk is None:
            chunk = int(max(1, min(256, (1 << 23) // self._per_sample_floats())))
        keras_out, file_out = [], []
        for n0 in range(0, len(x), chunk):
            xc = x[n0:n0 + chunk]
            kv = self._run_chunk(xc, self.checks, n0)
            keras_out.append(np.asarray(self.model(xc, training=False), np.float64))
            free = np.asarray(self._free_run(xc, kv, n0, report), np.float64)
            whole = np.asarray(self.stepper.run(xc), np.float64)
            # the file as the runtime runs it vs the op-by-op run above
            report.run_vs_steps = max(report.run_vs_steps, float(np.abs(free - whole).max()))
            file_out.append(whole)
        k, f = np.concatenate(keras_out), np.concatenate(file_out)
        k, f = k.reshape(len(k), -1), f.reshape(len(f), -1)
        report.ops = self.checks
        ka, fa = k.argmax(1), f.argmax(1)
        # a rounding tie: in a sample where no binarized value differs, every
        # difference is float32 rounding (each op checked above), so another
        # argmax means Keras's best two outputs tie within rounding (exact
        # ties are common: binary dots are integers)
        clean = np.ones(len(k), bool)
        clean[[fl.sample for fl in report.free_flips]] = False
        tie = (ka != fa) & clean
        report.top1_strict = float(np.mean(ka == fa))
        report.ties = int(tie.sum())
        report.top1_agreement = float(np.mean((ka == fa) | tie))
        report.max_logit_diff = float(np.abs(k - f).max())
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            report.keras_accuracy = float(np.mean(k.argmax(1) == labels))
            report.file_accuracy = float(np.mean(f.argmax(1) == labels))
        return report


def check(keras_model, conversion, x, labels=None, source="random", backend="auto"):
    return Checker(keras_model, conversion, backend).run(x, labels, source)
